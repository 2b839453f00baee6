// SecureSign token transport, Android side. NEVER COMPILED on this project's CI (no Android
// SDK/NDK): see ../../../../README.md. Raw transfers only — CCID framing, APDU chaining and
// PIV are the Rust core's (tested there). Rejection codes are RawError::from_rejection's.

package `in`.securesign.transport

import android.app.Activity
import android.app.PendingIntent
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.hardware.usb.UsbConstants
import android.hardware.usb.UsbDevice
import android.hardware.usb.UsbDeviceConnection
import android.hardware.usb.UsbEndpoint
import android.hardware.usb.UsbInterface
import android.hardware.usb.UsbManager
import android.nfc.NfcAdapter
import android.nfc.Tag
import android.nfc.TagLostException
import android.nfc.tech.IsoDep
import android.os.Build
import android.util.Base64
import androidx.core.content.ContextCompat
import app.tauri.annotation.Command
import app.tauri.annotation.InvokeArg
import app.tauri.annotation.TauriPlugin
import app.tauri.plugin.Invoke
import app.tauri.plugin.JSArray
import app.tauri.plugin.JSObject
import app.tauri.plugin.Plugin
import java.io.IOException
import java.util.concurrent.Executors
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

private const val ACTION_USB_PERMISSION = "in.securesign.transport.USB_PERMISSION"
private const val CCID_CLASS = 0x0B
private const val NFC_MIN_TIMEOUT_MS = 5000

@InvokeArg class UsbOpenArgs { lateinit var deviceName: String }
@InvokeArg class DataArgs { lateinit var data: String }
@InvokeArg class ReadArgs { var timeoutMs: Int = 10000 }
@InvokeArg class ApduConnectArgs { var kind: String = "nfc"; var waitMs: Long = 60000; var timeoutMs: Int = NFC_MIN_TIMEOUT_MS }

// Commands arrive on the main thread (Tauri's run_on_android_context): every blocking
// transfer runs on `io`, one at a time and in order, and answers from there. Interrupt-IN
// reads (the app's removal watcher waits on them, 500 ms at a time) run on their own
// executor, `irq`, so that they never hold up the token's bulk transfers.
@TauriPlugin
class TransportPlugin(private val activity: Activity) : Plugin(activity) {
    private val usb = activity.getSystemService(Context.USB_SERVICE) as UsbManager
    private val io = Executors.newSingleThreadExecutor()
    private val irq = Executors.newSingleThreadExecutor()

    // The open USB device: connection, claimed CCID interface, its endpoints.
    private var device: UsbDevice? = null
    private var connection: UsbDeviceConnection? = null
    private var iface: UsbInterface? = null
    private var bulkOut: UsbEndpoint? = null
    private var bulkIn: UsbEndpoint? = null
    private var interruptIn: UsbEndpoint? = null
    private var pendingOpen: Invoke? = null

    // The connected NFC tag.
    private var isoDep: IsoDep? = null
    private val tags = LinkedBlockingQueue<Tag>()

    private val receiver = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) {
            val dev = deviceOf(intent)
            when (intent.action) {
                ACTION_USB_PERMISSION -> {
                    val invoke = pendingOpen ?: return
                    pendingOpen = null
                    if (dev != null && intent.getBooleanExtra(UsbManager.EXTRA_PERMISSION_GRANTED, false)) {
                        open(dev, invoke)
                    } else {
                        invoke.reject("the USB permission was refused", "permissionDenied")
                    }
                }
                UsbManager.ACTION_USB_DEVICE_ATTACHED -> if (dev != null && isCcid(dev)) {
                    trigger("usbAttached", JSObject().put("name", dev.deviceName))
                }
                UsbManager.ACTION_USB_DEVICE_DETACHED -> if (dev != null) {
                    if (dev.deviceName == device?.deviceName) closeUsb()
                    trigger("usbDetached", JSObject().put("name", dev.deviceName))
                }
            }
        }
    }

    init {
        val filter = IntentFilter().apply {
            addAction(ACTION_USB_PERMISSION)
            addAction(UsbManager.ACTION_USB_DEVICE_ATTACHED)
            addAction(UsbManager.ACTION_USB_DEVICE_DETACHED)
        }
        ContextCompat.registerReceiver(activity, receiver, filter, ContextCompat.RECEIVER_NOT_EXPORTED)
    }

    private fun deviceOf(intent: Intent): UsbDevice? =
        if (Build.VERSION.SDK_INT >= 33) intent.getParcelableExtra(UsbManager.EXTRA_DEVICE, UsbDevice::class.java)
        else @Suppress("DEPRECATION") intent.getParcelableExtra(UsbManager.EXTRA_DEVICE)

    private fun ccidInterface(dev: UsbDevice): UsbInterface? =
        (0 until dev.interfaceCount).map { dev.getInterface(it) }.firstOrNull { it.interfaceClass == CCID_CLASS }

    private fun isCcid(dev: UsbDevice) = ccidInterface(dev) != null

    private fun b64(bytes: ByteArray) = Base64.encodeToString(bytes, Base64.NO_WRAP)

    // ---- USB host: raw transfers ----

    @Command
    fun usbDevices(invoke: Invoke) {
        val list = JSArray()
        usb.deviceList.values.filter { isCcid(it) }.forEach {
            list.put(JSObject().put("name", it.deviceName).put("vendorId", it.vendorId)
                .put("productId", it.productId).put("product", it.productName))
        }
        invoke.resolve(JSObject().put("devices", list))
    }

    @Command
    fun usbOpen(invoke: Invoke) {
        val args = invoke.parseArgs(UsbOpenArgs::class.java)
        val dev = usb.deviceList[args.deviceName]
            ?: return invoke.reject("no such USB device", "disconnected")
        if (usb.hasPermission(dev)) return open(dev, invoke)
        pendingOpen?.reject("another USB permission prompt replaced this one", "permissionDenied")
        pendingOpen = invoke
        val flags = if (Build.VERSION.SDK_INT >= 31) PendingIntent.FLAG_MUTABLE else 0
        val intent = Intent(ACTION_USB_PERMISSION).setPackage(activity.packageName)
        usb.requestPermission(dev, PendingIntent.getBroadcast(activity, 0, intent, flags))
    }

    private fun open(dev: UsbDevice, invoke: Invoke) {
        closeUsb()
        val intf = ccidInterface(dev) ?: return invoke.reject("no CCID interface", "notAvailable")
        val conn = usb.openDevice(dev) ?: return invoke.reject("cannot open the USB device", "disconnected")
        if (!conn.claimInterface(intf, true)) {
            conn.close()
            return invoke.reject("cannot claim the CCID interface", "ioError")
        }
        for (i in 0 until intf.endpointCount) {
            val ep = intf.getEndpoint(i)
            when {
                ep.type == UsbConstants.USB_ENDPOINT_XFER_BULK && ep.direction == UsbConstants.USB_DIR_OUT -> bulkOut = ep
                ep.type == UsbConstants.USB_ENDPOINT_XFER_BULK && ep.direction == UsbConstants.USB_DIR_IN -> bulkIn = ep
                ep.type == UsbConstants.USB_ENDPOINT_XFER_INT && ep.direction == UsbConstants.USB_DIR_IN -> interruptIn = ep
            }
        }
        device = dev; connection = conn; iface = intf
        if (bulkOut == null || bulkIn == null) {
            closeUsb()
            return invoke.reject("the CCID interface has no bulk endpoints", "ioError")
        }
        val name = "USB CCID %04x:%04x %s".format(dev.vendorId, dev.productId, dev.productName ?: "")
        invoke.resolve(JSObject().put("readerName", name.trim()).put("rawDescriptors", b64(conn.rawDescriptors)))
    }

    @Command
    fun usbBulkOut(invoke: Invoke) {
        val conn = connection ?: return invoke.reject("no USB device open", "disconnected")
        val data = Base64.decode(invoke.parseArgs(DataArgs::class.java).data, Base64.DEFAULT)
        io.execute {
            val n = conn.bulkTransfer(bulkOut, data, data.size, 5000)
            data.fill(0) // may hold a VERIFY's PIN
            if (n != data.size) {
                invoke.reject("bulk-OUT wrote $n of ${data.size} bytes", if (device == null) "disconnected" else "ioError")
            } else {
                invoke.resolve()
            }
        }
    }

    @Command
    fun usbBulkIn(invoke: Invoke) = read(invoke, bulkIn, io)

    @Command
    fun usbInterruptIn(invoke: Invoke) = read(invoke, interruptIn, irq)

    private fun read(invoke: Invoke, ep: UsbEndpoint?, executor: java.util.concurrent.Executor) {
        val conn = connection ?: return invoke.reject("no USB device open", "disconnected")
        val endpoint = ep ?: return invoke.reject("no such endpoint", "notAvailable")
        val timeout = invoke.parseArgs(ReadArgs::class.java).timeoutMs
        // Before Android 9 one transfer carries at most 16 KiB; an extended CCID message is up to 65544 bytes.
        val buf = ByteArray(if (Build.VERSION.SDK_INT >= 28) 65544 else 16384)
        executor.execute {
            val n = conn.bulkTransfer(endpoint, buf, buf.size, timeout)
            // -1 is both a timeout and a failure; a gone device is seen by the detach receiver.
            if (n < 0) {
                invoke.reject("no data", if (device == null) "disconnected" else "timeout")
            } else {
                invoke.resolve(JSObject().put("data", b64(buf.copyOf(n))))
            }
        }
    }

    @Command
    fun usbClose(invoke: Invoke) { closeUsb(); invoke.resolve() }

    private fun closeUsb() {
        iface?.let { connection?.releaseInterface(it) }
        connection?.close()
        device = null; connection = null; iface = null; bulkOut = null; bulkIn = null; interruptIn = null
    }

    // ---- NFC IsoDep: one APDU per call ----

    @Command
    fun apduConnect(invoke: Invoke) {
        val args = invoke.parseArgs(ApduConnectArgs::class.java)
        if (args.kind != "nfc") return invoke.reject("only NFC carries APDUs on Android (USB uses CCID)", "notAvailable")
        val adapter = NfcAdapter.getDefaultAdapter(activity)
            ?: return invoke.reject("this phone has no NFC", "notAvailable")
        if (!adapter.isEnabled) return invoke.reject("NFC is off", "notAvailable")
        tags.clear()
        val flags = NfcAdapter.FLAG_READER_NFC_A or NfcAdapter.FLAG_READER_NFC_B or NfcAdapter.FLAG_READER_SKIP_NDEF_CHECK
        adapter.enableReaderMode(activity, { tag -> tags.offer(tag) }, flags, null)
        // Waits for the tap off the main thread (and off `io`).
        Thread {
            val tag = tags.poll(args.waitMs, TimeUnit.MILLISECONDS)
                ?: return@Thread invoke.reject("no card was tapped", "cardAbsent")
            val dep = IsoDep.get(tag) ?: return@Thread invoke.reject("the card is not ISO 14443-4", "ioError")
            try {
                dep.connect()
                dep.timeout = maxOf(args.timeoutMs, NFC_MIN_TIMEOUT_MS)
                isoDep = dep
                invoke.resolve(JSObject().put("name", "NFC").put("maxApduLen", dep.maxTransceiveLength)
                    .put("extendedLength", dep.isExtendedLengthApduSupported))
            } catch (e: TagLostException) {
                invoke.reject("the card left the field", "cardAbsent")
            } catch (e: IOException) {
                invoke.reject(e.message ?: "NFC connect failed", "ioError")
            }
        }.start()
    }

    // Android has no passive presence check of a connected tag: `isConnected` turns false
    // only once a transceive failed (TagLostException clears `isoDep`). A probe APDU could
    // break the token's command chaining, so none is sent: an NFC card that left is noticed
    // at the next transfer (the card itself forgot its PIN state when it lost the field).
    @Command
    fun apduPresent(invoke: Invoke) {
        invoke.resolve(JSObject().put("present", isoDep?.isConnected == true))
    }

    @Command
    fun apduTransmit(invoke: Invoke) {
        val dep = isoDep ?: return invoke.reject("no card connected", "cardAbsent")
        val apdu = Base64.decode(invoke.parseArgs(DataArgs::class.java).data, Base64.DEFAULT)
        io.execute {
            try {
                val response = dep.transceive(apdu)
                invoke.resolve(JSObject().put("data", b64(response)))
            } catch (e: TagLostException) {
                isoDep = null
                invoke.reject("the card left the field", "cardAbsent")
            } catch (e: IOException) {
                isoDep = null
                invoke.reject(e.message ?: "NFC transceive failed", "ioError")
            } finally {
                apdu.fill(0) // may hold a VERIFY's PIN
            }
        }
    }

    @Command
    fun apduDisconnect(invoke: Invoke) {
        try { isoDep?.close() } catch (_: IOException) {}
        isoDep = null
        NfcAdapter.getDefaultAdapter(activity)?.disableReaderMode(activity)
        invoke.resolve()
    }
}
