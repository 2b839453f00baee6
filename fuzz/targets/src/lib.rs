//! The bodies of SecureSign's fuzz targets.
//!
//! Each module has one `run(data: &[u8])`: it feeds `data` to a parser or protocol
//! handler of the core or the server and panics when a property breaks (not only on a
//! crash). `fuzz/fuzz_targets/<name>.rs` (cargo-fuzz, libFuzzer) calls it; so does this
//! crate's `replay` test, which runs every file of `fuzz/seeds/<name>/`, `fuzz/corpus/<name>/` and
//! `fuzz/regressions/<name>/` through it on the stable toolchain in seconds.
//!
//! | target | what |
//! |---|---|
//! | [`deeplink`] | `SignLink::parse`, `link_in_args` |
//! | [`origin_url`] | `Origin::parse`, callback URLs, `Whitelist`, callback address checks |
//! | [`apdu_chain`] | ISO 7816 chaining (`61xx`, `6Cxx`, command chaining) over a scripted card |
//! | [`piv_card`] | the PIV backend over a scripted card: TLV, GET DATA objects, gzip certificates, status words, signatures |
//! | [`cert_cms`] | certificates, raw and CMS signatures, the server's result verification and signer trust |
//! | [`server_bodies`] | request bodies through the real router (validate, session, result, sign request) |

pub mod apdu_chain;
pub mod cert_cms;
pub mod deeplink;
pub mod input;
pub mod origin_url;
pub mod piv_card;
pub mod server_bodies;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target by name, as the corpora directories are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("deeplink", deeplink::run),
    ("origin_url", origin_url::run),
    ("apdu_chain", apdu_chain::run),
    ("piv_card", piv_card::run),
    ("cert_cms", cert_cms::run),
    ("server_bodies", server_bodies::run),
];
