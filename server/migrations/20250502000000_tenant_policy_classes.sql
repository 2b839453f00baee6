-- A tenant may accept only some India PKI classes (`tenant policy-classes`): a JSON array of
-- class names (`["class3"]`); NULL accepts any class. Every new session of the tenant
-- requires them (its `signer.policyClasses`), so the app and the server enforce them.
ALTER TABLE tenants ADD COLUMN policy_classes TEXT;
