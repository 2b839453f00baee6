//! [`RawTransfers`] over one generic call into the native plugin: the command names, the
//! JSON arguments and the base64 bytes of each call, so the platform adapter
//! (`mobile.rs`) is nothing but `run_mobile_plugin`.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::models::{
    decode, millis, ApduConnectArgs, ApduLinkInfo, ApduLinkKind, DataAnswer, DataArgs,
    PresentAnswer, ReadArgs, UsbDevice, UsbDevicesAnswer, UsbOpenAnswer, UsbOpenArgs, UsbOpened,
    NFC_MIN_TIMEOUT,
};
use crate::raw::{RawError, RawTransfers};

/// One call into the native plugin: a command name (the Kotlin/Swift method) and its JSON
/// arguments in, its JSON answer or its rejection out.
pub trait PluginCall: Clone + Send + Sync + 'static {
    /// Runs `command` with `args`.
    fn call(&self, command: &str, args: Value) -> Result<Value, RawError>;
}

/// The native plugin's commands as [`RawTransfers`].
#[derive(Debug, Clone)]
pub struct Bridge<C: PluginCall> {
    plugin: C,
}

impl<C: PluginCall> Bridge<C> {
    /// The commands over `plugin`.
    pub fn new(plugin: C) -> Self {
        Self { plugin }
    }

    fn run<A: Serialize, T: DeserializeOwned>(
        &self,
        command: &str,
        args: A,
    ) -> Result<T, RawError> {
        let args = serde_json::to_value(args)
            .map_err(|e| RawError::Bridge(format!("{command} arguments: {e}")))?;
        let answer = self.plugin.call(command, args)?;
        serde_json::from_value(answer)
            .map_err(|e| RawError::Bridge(format!("{command} answer: {e}")))
    }

    fn run_unit<A: Serialize>(&self, command: &str, args: A) -> Result<(), RawError> {
        let _: Value = self.run(command, args)?;
        Ok(())
    }
}

/// No arguments.
#[derive(Serialize)]
struct NoArgs {}

impl<C: PluginCall> RawTransfers for Bridge<C> {
    fn usb_devices(&mut self) -> Result<Vec<UsbDevice>, RawError> {
        let answer: UsbDevicesAnswer = self.run("usbDevices", NoArgs {})?;
        Ok(answer.devices)
    }

    fn usb_open(&mut self, device_name: &str) -> Result<UsbOpened, RawError> {
        let answer: UsbOpenAnswer = self.run("usbOpen", UsbOpenArgs { device_name })?;
        Ok(UsbOpened {
            reader_name: answer.reader_name,
            raw_descriptors: decode(&answer.raw_descriptors)?,
        })
    }

    fn usb_bulk_out(&mut self, data: &[u8]) -> Result<(), RawError> {
        self.run_unit("usbBulkOut", DataArgs::new(data))
    }

    fn usb_bulk_in(&mut self, timeout: Duration) -> Result<Vec<u8>, RawError> {
        let answer: DataAnswer = self.run(
            "usbBulkIn",
            ReadArgs {
                timeout_ms: millis(timeout),
            },
        )?;
        answer.bytes()
    }

    fn usb_interrupt_in(&mut self, timeout: Duration) -> Result<Vec<u8>, RawError> {
        let answer: DataAnswer = self.run(
            "usbInterruptIn",
            ReadArgs {
                timeout_ms: millis(timeout),
            },
        )?;
        answer.bytes()
    }

    fn usb_close(&mut self) -> Result<(), RawError> {
        self.run_unit("usbClose", NoArgs {})
    }

    fn apdu_connect(
        &mut self,
        kind: ApduLinkKind,
        wait: Duration,
        timeout: Duration,
    ) -> Result<ApduLinkInfo, RawError> {
        self.run(
            "apduConnect",
            ApduConnectArgs {
                kind,
                wait_ms: millis(wait),
                timeout_ms: millis(timeout.max(NFC_MIN_TIMEOUT)),
            },
        )
    }

    fn apdu_present(&mut self) -> Result<bool, RawError> {
        let answer: PresentAnswer = self.run("apduPresent", NoArgs {})?;
        Ok(answer.present)
    }

    fn apdu_transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, RawError> {
        let answer: DataAnswer = self.run("apduTransmit", DataArgs::new(apdu))?;
        answer.bytes()
    }

    fn apdu_disconnect(&mut self) -> Result<(), RawError> {
        self.run_unit("apduDisconnect", NoArgs {})
    }
}
