//! Android USB host: the core's [`CcidTransport`] over the platform's raw bulk transfers.

use std::time::Duration;

use securesign_core::ccid::{BulkPipe, CcidDescriptor, CcidTransport, PipeError};

use crate::raw::{RawError, RawTransfers};
use crate::Error;

/// The bulk endpoints of the claimed CCID interface, through the native plugin. Closes the
/// device when dropped.
#[derive(Debug)]
pub struct PluginBulkPipe<T: RawTransfers> {
    raw: T,
}

impl<T: RawTransfers> PluginBulkPipe<T> {
    /// The pipe over an opened device.
    pub fn new(raw: T) -> Self {
        Self { raw }
    }

    /// Reads the interrupt-IN endpoint once; `None` when nothing came within `timeout`.
    pub fn interrupt_in(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, RawError> {
        match self.raw.usb_interrupt_in(timeout) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(RawError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<T: RawTransfers> BulkPipe for PluginBulkPipe<T> {
    fn bulk_out(&mut self, data: &[u8]) -> Result<(), PipeError> {
        Ok(self.raw.usb_bulk_out(data)?)
    }

    fn bulk_in(&mut self, timeout: Duration) -> Result<Vec<u8>, PipeError> {
        Ok(self.raw.usb_bulk_in(timeout)?)
    }
}

impl<T: RawTransfers> Drop for PluginBulkPipe<T> {
    fn drop(&mut self) {
        // Nothing to do about a device that is already gone.
        let _ = self.raw.usb_close();
    }
}

/// A USB CCID reader as the core's `ApduTransport`.
pub type UsbCcidTransport<T> = CcidTransport<PluginBulkPipe<T>>;

/// Opens `device_name` (the platform asks the user for permission and claims the CCID
/// interface), finds its CCID class descriptor and powers its card on (slot 0).
pub fn open_usb_reader<T: RawTransfers>(
    mut raw: T,
    device_name: &str,
) -> Result<UsbCcidTransport<T>, Error> {
    let opened = raw.usb_open(device_name)?;
    // From here the pipe owns the device: any failure below closes it.
    let pipe = PluginBulkPipe::new(raw);
    let descriptor = CcidDescriptor::find_in_configuration(&opened.raw_descriptors)?;
    Ok(CcidTransport::open(
        pipe,
        descriptor,
        0,
        opened.reader_name,
    )?)
}

/// Waits up to `timeout` for one interrupt message and applies it to the transport.
/// Returns the slot's presence when the reader reported a change of it.
pub fn poll_slot_change<T: RawTransfers>(
    transport: &mut UsbCcidTransport<T>,
    timeout: Duration,
) -> Result<Option<bool>, Error> {
    let Some(bytes) = transport.pipe_mut().interrupt_in(timeout)? else {
        return Ok(None);
    };
    Ok(transport.on_interrupt(&bytes)?)
}
