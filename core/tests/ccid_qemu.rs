#![allow(clippy::unwrap_used)]
// The guest side talks to the kernel's usbfs with three ioctls: an FFI wrapper, the only
// unsafe code here.
#![allow(unsafe_code)]
//! The CCID host against an independent device-side implementation: QEMU's emulated
//! `usb-ccid` reader, in a small Linux guest (Debian kernel + busybox, TCG), with its
//! `ccid-card-passthru` card forwarded over the VSCard protocol to the real virtual PIV
//! card (PivLab, through PC/SC). Inside the guest this same test binary runs
//! [`qemu_guest_side`]: CcidTransport over the kernel's usbfs bulk endpoints, the PIV
//! backend on top, VERIFY and a 9A signature, then the card removed by the host and the
//! removal seen on the interrupt endpoint and as SS_TOKEN_NOT_PRESENT.
//!
//! QEMU 7.2's usb-ccid declares TPDU level (dwFeatures 0x000104FE, T=0 only), which the
//! core refuses (checked first, against the real descriptor). It forwards `abData` to the
//! card unchanged, so the guest then patches the level bits to short APDU level to drive
//! the rest of the protocol (power on/ATR, sequence numbers, XfrBlock/DataBlock, slot
//! status, NotifySlotChange) against QEMU's implementation. TPDU readers stay unsupported.
//!
//! Needs qemu-system-x86 and a guest kernel: `core/tests/ccid_qemu/setup.sh` (run with
//! `cargo nextest run -p securesign-core --test ccid_qemu --run-ignored ignored-only`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use securesign_core::apdu::pcsc::PcscTransport;
use securesign_core::apdu::ApduTransport;
use securesign_core::backend::piv::PivBackend;
use securesign_core::backend::{KeyId, SignatureScheme, TokenBackend};
use securesign_core::ccid::{BulkPipe, CcidDescriptor, CcidError, CcidTransport, PipeError};
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::session::SessionPolicy;
use securesign_core::verify::verify_digest_signature;
use securesign_core::{ErrorCode, FinalTry, Pin, Token};
use securesign_testlab::{PivLab, PivSlot, PIV_PIN};

const GUEST_ENV: &str = "SECURESIGN_CCID_USBFS";
const MARK: &str = "CCID-GUEST";
const DOCUMENT: &[u8] = b"signed through QEMU usb-ccid";

// ------------------------------------------------------------------ guest: usbfs pipe

/// The CCID interface's endpoints on a usbfs device node.
struct Usbfs {
    file: std::fs::File,
    bulk_out: u8,
    bulk_in: u8,
    interrupt_in: u8,
}

/// `struct usbdevfs_bulktransfer` (linux/usbdevice_fs.h).
#[repr(C)]
struct BulkTransfer {
    ep: u32,
    len: u32,
    timeout: u32,
    data: *mut libc::c_void,
}

/// `_IOWR('U', 2, struct usbdevfs_bulktransfer)`.
const USBDEVFS_BULK: libc::c_ulong = 0xC018_5502;
/// `_IOR('U', 15, unsigned int)`.
const USBDEVFS_CLAIMINTERFACE: libc::c_ulong = 0x8004_550F;

impl Usbfs {
    fn open(path: &str, raw: &[u8]) -> Self {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut interface: libc::c_uint = 0;
        let (mut bulk_out, mut bulk_in, mut interrupt_in) = (0, 0, 0);
        let mut rest = raw;
        let mut in_ccid = false;
        while let [len, kind, ..] = *rest {
            let (this, next) = rest.split_at(usize::from(len).max(2).min(rest.len()));
            match kind {
                4 => {
                    in_ccid = this[5] == 0x0B;
                    if in_ccid {
                        interface = libc::c_uint::from(this[2]);
                    }
                }
                5 if in_ccid => match (this[2] & 0x80 != 0, this[3] & 0x03) {
                    (false, 2) => bulk_out = this[2],
                    (true, 2) => bulk_in = this[2],
                    (true, 3) => interrupt_in = this[2],
                    _ => {}
                },
                _ => {}
            }
            rest = next;
        }
        // SAFETY: a valid fd and a pointer to a live c_uint, as the ioctl expects.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                USBDEVFS_CLAIMINTERFACE,
                &mut interface as *mut libc::c_uint,
            )
        };
        assert_eq!(
            rc,
            0,
            "claim interface: {}",
            std::io::Error::last_os_error()
        );
        Self {
            file,
            bulk_out,
            bulk_in,
            interrupt_in,
        }
    }

    fn transfer(&mut self, ep: u8, buf: &mut [u8], timeout: Duration) -> Result<usize, PipeError> {
        use std::os::fd::AsRawFd;
        let mut t = BulkTransfer {
            ep: u32::from(ep),
            len: buf.len() as u32,
            timeout: timeout.as_millis().min(u128::from(u32::MAX)) as u32,
            data: buf.as_mut_ptr().cast(),
        };
        // SAFETY: `t.data` points to `buf`, valid for `t.len` bytes during the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), USBDEVFS_BULK, &mut t) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let err = std::io::Error::last_os_error();
        Err(match err.raw_os_error() {
            Some(libc::ETIMEDOUT) => PipeError::Timeout,
            Some(libc::ENODEV) | Some(libc::ESHUTDOWN) => PipeError::Disconnected,
            _ => PipeError::Io(err.to_string()),
        })
    }

    fn interrupt(&mut self, timeout: Duration) -> Result<Vec<u8>, PipeError> {
        let mut buf = vec![0u8; 64];
        let n = self.transfer(self.interrupt_in, &mut buf, timeout)?;
        buf.truncate(n);
        Ok(buf)
    }
}

impl BulkPipe for Usbfs {
    fn bulk_out(&mut self, data: &[u8]) -> Result<(), PipeError> {
        let mut copy = data.to_vec();
        let n = self.transfer(self.bulk_out, &mut copy, Duration::from_secs(10))?;
        if n == data.len() {
            Ok(())
        } else {
            Err(PipeError::Io(format!("short write {n}/{}", data.len())))
        }
    }

    fn bulk_in(&mut self, timeout: Duration) -> Result<Vec<u8>, PipeError> {
        let mut buf = vec![0u8; 65_554];
        let n = self.transfer(self.bulk_in, &mut buf, timeout)?;
        buf.truncate(n);
        Ok(buf)
    }
}

fn say(what: &str) {
    println!("{MARK} {what}");
    std::io::stdout().flush().unwrap();
}

/// Runs inside the guest (started by [`qemu_usb_ccid_peer`]).
#[test]
#[ignore = "runs inside the QEMU guest, started by qemu_usb_ccid_peer"]
fn qemu_guest_side() {
    let Ok(path) = std::env::var(GUEST_ENV) else {
        eprintln!("skipped: qemu_guest_side runs only inside the QEMU guest ({GUEST_ENV} unset)");
        return;
    };
    let mut raw = std::fs::read(&path).unwrap();
    // The real device's descriptors: a TPDU-level reader is refused, clearly.
    let refused = CcidDescriptor::find_in_configuration(&raw).unwrap_err();
    assert!(matches!(refused, CcidError::Unsupported(ref m) if m.contains("TPDU")));
    say(&format!("refused {refused}"));
    // Patch the exchange level (see the file's doc) and go on.
    let at = raw
        .windows(2)
        .position(|w| w == [0x36, 0x21])
        .expect("class descriptor");
    let features = u32::from_le_bytes(raw[at + 40..at + 44].try_into().unwrap());
    say(&format!("features {features:08x}"));
    let patched = (features & !0x0007_0000) | 0x0002_0000;
    raw[at + 40..at + 44].copy_from_slice(&patched.to_le_bytes());
    let descriptor = CcidDescriptor::find_in_configuration(&raw).unwrap();
    say(&format!("max-message {}", descriptor.max_message_len));
    let pipe = Usbfs::open(&path, &raw);
    // The backend will own the pipe; the interrupt endpoint is read through a duplicate
    // of the same open file (the interface claim belongs to it).
    let mut watch = Usbfs {
        file: pipe.file.try_clone().unwrap(),
        bulk_out: pipe.bulk_out,
        bulk_in: pipe.bulk_in,
        interrupt_in: pipe.interrupt_in,
    };
    let transport = CcidTransport::open(pipe, descriptor, 0, "QEMU usb-ccid").unwrap();
    say(&format!("atr {}", hex::encode(transport.atr().unwrap())));

    let backend = PivBackend::open(transport).unwrap();
    let boxed: Box<dyn TokenBackend> = Box::new(backend);
    let mut t = Token::new(boxed, SessionPolicy::default()).unwrap();
    t.verify_pin(
        Pin::new(PIV_PIN.into()),
        FinalTry::NotConfirmed,
        SystemClock.now(),
    )
    .unwrap();
    let digest = Sha256Digest::of(DOCUMENT);
    let signature = t
        .backend_mut()
        .sign_digest(
            &KeyId(vec![0x9A]),
            SignatureScheme::EcdsaP256Sha256,
            &digest,
        )
        .unwrap();
    say(&format!("signature {}", hex::encode(&signature)));

    // The host pulls the card: NotifySlotChange on the interrupt endpoint, then the
    // token is not present.
    say("remove-card-now");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut gone = false;
    while Instant::now() < deadline && !gone {
        match watch.interrupt(Duration::from_secs(5)) {
            Ok(bytes) => {
                say(&format!("interrupt {}", hex::encode(&bytes)));
                if let Ok(securesign_core::ccid::Interrupt::SlotChange(slots)) =
                    securesign_core::ccid::parse_interrupt(&bytes, 0)
                {
                    gone = !slots[0].present;
                }
            }
            Err(PipeError::Timeout) => {}
            Err(e) => panic!("interrupt endpoint: {e}"),
        }
    }
    assert!(gone, "no NotifySlotChange for the removal");
    let err = t
        .backend_mut()
        .sign_digest(
            &KeyId(vec![0x9A]),
            SignatureScheme::EcdsaP256Sha256,
            &digest,
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TokenNotPresent, "{err:?}");
    say("removal token-not-present");
    say("done");
}

// ------------------------------------------------------------- host: VSCard card side

/// VSCard message types (QEMU's vscard_common.h).
const VSC_INIT: u32 = 1;
const VSC_ERROR: u32 = 2;
const VSC_READER_ADD: u32 = 3;
const VSC_ATR: u32 = 5;
const VSC_CARD_REMOVE: u32 = 6;
const VSC_APDU: u32 = 7;
const VSC_FLUSH: u32 = 8;
const VSC_FLUSH_COMPLETE: u32 = 9;

/// A T=0 ATR (ISO/IEC 7816-3: TS 3B, T0 02: two historical bytes).
const PASSTHRU_ATR: [u8; 4] = [0x3B, 0x02, 0x14, 0x50];

fn vsc_send(stream: &Mutex<TcpStream>, kind: u32, reader: u32, payload: &[u8]) {
    let mut msg = Vec::with_capacity(12 + payload.len());
    msg.extend_from_slice(&kind.to_be_bytes());
    msg.extend_from_slice(&reader.to_be_bytes());
    msg.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    msg.extend_from_slice(payload);
    let _ = stream.lock().unwrap().write_all(&msg);
}

/// Serves QEMU's ccid-card-passthru: the card is the lab's virtual PIV card.
fn serve_card(mut reader: TcpStream, writer: Arc<Mutex<TcpStream>>, mut card: PcscTransport) {
    let mut init = b"VSCD".to_vec();
    init.extend_from_slice(&2u32.to_be_bytes());
    init.extend_from_slice(&0u32.to_be_bytes());
    vsc_send(&writer, VSC_INIT, 0, &init);
    let mut inserted = false;
    loop {
        let mut header = [0u8; 12];
        if reader.read_exact(&mut header).is_err() {
            return;
        }
        let kind = u32::from_be_bytes(header[0..4].try_into().unwrap());
        let id = u32::from_be_bytes(header[4..8].try_into().unwrap());
        let len = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len];
        if reader.read_exact(&mut payload).is_err() {
            return;
        }
        match kind {
            VSC_INIT => vsc_send(&writer, VSC_READER_ADD, 0, &[]),
            VSC_ERROR if !inserted && payload == [0, 0, 0, 0] => {
                inserted = true;
                vsc_send(&writer, VSC_ATR, id, &PASSTHRU_ATR);
            }
            VSC_APDU => match card.transmit(&payload) {
                Ok(response) => vsc_send(&writer, VSC_APDU, id, &response),
                Err(e) => {
                    eprintln!("card: {e}");
                    vsc_send(&writer, VSC_ERROR, id, &1u32.to_be_bytes());
                }
            },
            VSC_FLUSH => vsc_send(&writer, VSC_FLUSH_COMPLETE, id, &[]),
            _ => {}
        }
    }
}

fn peer_dir() -> PathBuf {
    std::env::var_os("SECURESIGN_CCID_QEMU_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ccid-qemu"))
}

/// The guest's initramfs: busybox, the USB host modules, this test binary and its
/// shared libraries, and an init that runs [`qemu_guest_side`].
fn build_initramfs(dir: &Path, work: &Path) -> PathBuf {
    let root = work.join("root");
    for d in ["bin", "proc", "sys", "dev", "mods", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(dir.join("busybox"), root.join("bin/busybox")).unwrap();
    for m in ["usb-common", "usbcore", "xhci-hcd", "xhci-pci"] {
        std::fs::copy(
            dir.join(format!("mods/{m}.ko")),
            root.join(format!("mods/{m}.ko")),
        )
        .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    std::fs::copy(&exe, root.join("t")).unwrap();
    let ldd = Command::new("ldd").arg(&exe).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(path) = path {
            let target = root.join(path.strip_prefix("/").unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&path, &target).unwrap();
        }
    }
    let init = format!(
        "#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in usb-common usbcore xhci-hcd xhci-pci; do insmod /mods/$m.ko; done
for i in $(seq 1 100); do [ -e /sys/bus/usb/devices/1-1/devnum ] && break; sleep 0.2; done
d=/sys/bus/usb/devices/1-1
export {GUEST_ENV}=/dev/bus/usb/$(printf %03d $(cat $d/busnum))/$(printf %03d $(cat $d/devnum))
/t qemu_guest_side --exact --ignored --nocapture --test-threads=1
echo \"{MARK} exit $?\"
poweroff -f
"
    );
    std::fs::write(root.join("init"), init).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(root.join("init"))
        .status()
        .unwrap();
    let image = work.join("initramfs.cpio");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | '{}' cpio -o -H newc > '{}' 2>/dev/null",
            root.display(),
            dir.join("busybox").display(),
            image.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    image
}

#[test]
#[ignore = "needs qemu-system-x86 and a guest kernel (core/tests/ccid_qemu/setup.sh); run with --run-ignored"]
fn qemu_usb_ccid_peer() {
    let dir = peer_dir();
    assert!(
        dir.join("vmlinuz").exists(),
        "no guest kernel in {}: run core/tests/ccid_qemu/setup.sh",
        dir.display()
    );
    let lab = PivLab::start_provisioned().unwrap_or_else(|e| panic!("PIV lab: {e:?}"));
    lab.apply_env();
    let work = tempfile::tempdir().unwrap();
    let initramfs = build_initramfs(&dir, work.path());

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let card = PcscTransport::open(lab.reader()).unwrap();
    let writer: Arc<Mutex<Option<Arc<Mutex<TcpStream>>>>> = Arc::default();
    let shared = writer.clone();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let w = Arc::new(Mutex::new(stream.try_clone().unwrap()));
        *shared.lock().unwrap() = Some(w.clone());
        serve_card(stream, w, card);
    });

    // coreutils `timeout` ends a guest that hangs without output.
    let mut qemu = Command::new("timeout")
        .args(["300", "qemu-system-x86_64"])
        .args(["-accel", "tcg", "-m", "1024", "-nodefaults", "-no-reboot"])
        .args(["-display", "none", "-serial", "stdio"])
        .arg("-kernel")
        .arg(dir.join("vmlinuz"))
        .arg("-initrd")
        .arg(&initramfs)
        .args(["-append", "console=ttyS0 panic=-1 loglevel=3"])
        .args(["-device", "qemu-xhci", "-device", "usb-ccid"])
        .arg("-chardev")
        .arg(format!("socket,id=card,host=127.0.0.1,port={port}"))
        .args(["-device", "ccid-card-passthru,chardev=card"])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("timeout + qemu-system-x86_64");
    let stdout = qemu.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap_or_default();
        eprintln!("guest: {line}");
        if line.contains(&format!("{MARK} remove-card-now")) {
            if let Some(w) = writer.lock().unwrap().as_ref() {
                vsc_send(w, VSC_CARD_REMOVE, 0, &[]);
            }
        }
        let done = line.contains(&format!("{MARK} exit"));
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = qemu.kill();
    let _ = qemu.wait();
    drop(server);

    let find = |key: &str| -> Option<String> {
        let prefix = format!("{MARK} {key} ");
        lines.iter().find_map(|l| {
            l.find(&prefix)
                .map(|i| l[i + prefix.len()..].trim().to_owned())
        })
    };
    assert_eq!(find("exit").as_deref(), Some("0"), "the guest side failed");
    assert!(find("refused").unwrap().contains("TPDU"));
    assert_eq!(find("atr").unwrap(), hex::encode(PASSTHRU_ATR));
    let signature = hex::decode(find("signature").expect("a signature")).unwrap();
    let cert = lab.cert_der(PivSlot::Auth9A).unwrap();
    verify_digest_signature(&cert, &Sha256Digest::of(DOCUMENT).0, &signature)
        .expect("the guest's signature verifies against the card's 9A certificate");
    assert!(lines
        .iter()
        .any(|l| l.contains("removal token-not-present")));
}
