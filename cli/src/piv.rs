//! The smart-card (PIV over PC/SC) path: `securesign readers`, and `--reader NAME`, which
//! opens the card's PIV application for every token command instead of a PKCS#11 module.

use securesign_core::apdu::pcsc::list_readers;
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::TokenBackend;
use securesign_core::session::SessionPolicy;
use securesign_core::{Error, Result, Token};

use crate::output::Printer;

/// The PIV card in `reader`, behind the core's policy.
pub fn open(reader: &str) -> Result<Token<Box<dyn TokenBackend>>> {
    let backend = PivBackend::open_reader(reader)?;
    Token::new(Box::new(backend), SessionPolicy::default())
}

/// `securesign readers`: every PC/SC reader and whether it holds a card.
pub fn readers(printer: Printer) -> Result<()> {
    let readers = list_readers().map_err(|e| Error::Config(format!("PC/SC: {e}")))?;
    printer.print(&serde_json::json!({ "readers": readers }), || {
        if readers.is_empty() {
            return "No smart-card reader.".into();
        }
        readers
            .iter()
            .map(|r| {
                let card = if r.card_present {
                    "card present"
                } else {
                    "empty"
                };
                format!("{} ({card})", r.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
