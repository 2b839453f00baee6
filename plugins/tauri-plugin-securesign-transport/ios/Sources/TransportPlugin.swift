// SecureSign token transport, iOS side. NEVER COMPILED on this project's CI (no Xcode):
// see ../../README.md. One APDU per call only — chaining, 61xx/6Cxx and PIV are the Rust
// core's (tested there). Rejection codes are RawError::from_rejection's.
//
// NFC: CoreNFC NFCTagReaderSession (.iso14443), NFCISO7816Tag.sendCommand. Needs the
// "Near Field Communication Tag Reading" capability, NFCReaderUsageDescription and the PIV
// AID in com.apple.developer.nfc.readersession.iso7816.select-identifiers (Info.plist).
// USB-C / Lightning readers: CryptoTokenKit TKSmartCardSlotManager, TKSmartCard.transmit.

import CoreNFC
import CryptoTokenKit
import Foundation
import SwiftRs
import Tauri
import UIKit
import WebKit

struct DataArgs: Decodable { let data: String }
struct ApduConnectArgs: Decodable {
  let kind: String
  let waitMs: UInt64
  let timeoutMs: UInt64
}

class TransportPlugin: Plugin, NFCTagReaderSessionDelegate {
  private var session: NFCTagReaderSession?
  private var tag: NFCISO7816Tag?
  private var pendingConnect: Invoke?
  private var card: TKSmartCard?

  // ---- USB host: Android only ----

  @objc public func usbDevices(_ invoke: Invoke) { invoke.resolve(["devices": []]) }
  @objc public func usbOpen(_ invoke: Invoke) { unavailable(invoke) }
  @objc public func usbBulkOut(_ invoke: Invoke) { unavailable(invoke) }
  @objc public func usbBulkIn(_ invoke: Invoke) { unavailable(invoke) }
  @objc public func usbInterruptIn(_ invoke: Invoke) { unavailable(invoke) }
  @objc public func usbClose(_ invoke: Invoke) { invoke.resolve() }

  private func unavailable(_ invoke: Invoke) {
    invoke.reject("iOS reaches USB readers through CryptoTokenKit (kind smartCard)", code: "notAvailable")
  }

  // ---- APDU links ----

  @objc public func apduConnect(_ invoke: Invoke) throws {
    let args = try invoke.parseArgs(ApduConnectArgs.self)
    if args.kind == "smartCard" {
      connectSmartCard(invoke, waitMs: args.waitMs)
      return
    }
    guard NFCTagReaderSession.readingAvailable else {
      invoke.reject("this iPhone cannot read NFC tags", code: "notAvailable")
      return
    }
    pendingConnect = invoke
    session = NFCTagReaderSession(pollingOption: .iso14443, delegate: self, queue: nil)
    session?.alertMessage = "Hold your card near the top of the iPhone"
    session?.begin()
  }

  private func connectSmartCard(_ invoke: Invoke, waitMs: UInt64) {
    guard let manager = TKSmartCardSlotManager.default, let name = manager.slotNames.first else {
      invoke.reject("no smart card reader", code: "notAvailable")
      return
    }
    manager.getSlot(withName: name) { slot in
      guard let slot = slot, slot.state == .validCard, let card = slot.makeSmartCard() else {
        invoke.reject("no card in the reader", code: "cardAbsent")
        return
      }
      card.beginSession { ok, error in
        if ok {
          self.card = card
          invoke.resolve(["name": name, "maxApduLen": 261, "extendedLength": false])
        } else {
          invoke.reject(error?.localizedDescription ?? "cannot open the card", code: "ioError")
        }
      }
    }
  }

  @objc public func apduPresent(_ invoke: Invoke) {
    if let card = card {
      invoke.resolve(["present": card.isValid])
    } else {
      invoke.resolve(["present": tag?.isAvailable ?? false])
    }
  }

  @objc public func apduTransmit(_ invoke: Invoke) throws {
    let args = try invoke.parseArgs(DataArgs.self)
    guard let apdu = Data(base64Encoded: args.data) else {
      invoke.reject("bad base64", code: "ioError")
      return
    }
    if let card = card {
      card.transmit(apdu) { response, error in
        if let response = response {
          invoke.resolve(["data": response.base64EncodedString()])
        } else {
          self.card = nil
          invoke.reject(error?.localizedDescription ?? "transmit failed", code: "cardAbsent")
        }
      }
      return
    }
    guard let tag = tag, let command = NFCISO7816APDU(data: apdu) else {
      invoke.reject("no card connected", code: "cardAbsent")
      return
    }
    tag.sendCommand(apdu: command) { data, sw1, sw2, error in
      if let error = error as? NFCReaderError {
        self.tag = nil
        let lost = error.code == .readerTransceiveErrorTagConnectionLost
          || error.code == .readerTransceiveErrorTagNotConnected
        invoke.reject(error.localizedDescription, code: lost ? "cardAbsent" : "ioError")
        return
      }
      var response = data
      response.append(contentsOf: [sw1, sw2])
      invoke.resolve(["data": response.base64EncodedString()])
    }
  }

  @objc public func apduDisconnect(_ invoke: Invoke) {
    card?.endSession()
    card = nil
    tag = nil
    session?.invalidate()
    session = nil
    invoke.resolve()
  }

  // ---- NFCTagReaderSessionDelegate ----

  func tagReaderSessionDidBecomeActive(_ session: NFCTagReaderSession) {}

  func tagReaderSession(_ session: NFCTagReaderSession, didInvalidateWithError error: Error) {
    tag = nil
    guard let invoke = pendingConnect else { return }
    pendingConnect = nil
    let cancelled = (error as? NFCReaderError)?.code == .readerSessionInvalidationErrorUserCanceled
    invoke.reject(error.localizedDescription, code: cancelled ? "cancelled" : "cardAbsent")
  }

  func tagReaderSession(_ session: NFCTagReaderSession, didDetect tags: [NFCTag]) {
    guard case let .iso7816(found)? = tags.first else {
      session.restartPolling()
      return
    }
    session.connect(to: tags[0]) { error in
      guard let invoke = self.pendingConnect else { return }
      self.pendingConnect = nil
      if let error = error {
        invoke.reject(error.localizedDescription, code: "cardAbsent")
        return
      }
      self.tag = found
      // CoreNFC carries extended-length APDUs when the card does; the core sends short ones.
      invoke.resolve(["name": "NFC", "maxApduLen": 261, "extendedLength": false])
    }
  }
}

@_cdecl("init_plugin_securesign_transport")
func initPlugin() -> Plugin {
  return TransportPlugin()
}
