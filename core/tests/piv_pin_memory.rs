//! No heap buffer that held the PIN, the PUK or their PIV-padded forms is freed without
//! being wiped, on every path that sends them to the real (virtual) card: VERIFY, the
//! re-VERIFY before each 9C ("PIN always") signature, CHANGE REFERENCE DATA and RESET
//! RETRY COUNTER, through the APDU chaining and the PC/SC transport.
//!
//! A counting global allocator looks at every block as it is freed (a plain `Vec` is freed
//! with its contents; a `Zeroizing` one is wiped first). It sees Rust heap memory only: the
//! stack, pcsc-lite's and pcscd's buffers are outside it (see the PIN hygiene notes).

#![allow(clippy::unwrap_used)]
// The test's own allocator: `GlobalAlloc` is an unsafe trait. It forwards to `System`
// and only reads a block it is handed back, before freeing it.
#![allow(unsafe_code)]

mod piv_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use piv_support::{pin, piv_key, provisioned_lab, sign_all, token};
use securesign_core::apdu::{exchange, ApduTransport, Command, TransportError};
use securesign_core::clock::{Clock, SystemClock};
use securesign_core::digest::Sha256Digest;
use securesign_core::FinalTry;
use securesign_testlab::{PivSlot, PIV_PIN, PIV_PUK};

const NEW_PIN: &str = "7391482";
const RESET_PIN: &str = "5017263";

/// Every form a secret takes on its way to the card: as typed, and padded with `FF`;
/// and (last) the marker of the `Command` test.
const SECRETS: [&[u8]; 7] = [
    b"123456\xFF\xFF",
    b"7391482\xFF",
    b"5017263\xFF",
    b"12345678",
    b"7391482",
    b"5017263",
    MARKER,
];
const MARKER: &[u8] = b"\xA5command data marker\x5A";

/// How many tests are looking (tests may share the process under `cargo test`).
static WATCHING: AtomicUsize = AtomicUsize::new(0);
static FREED_WITH_SECRET: [AtomicUsize; SECRETS.len()] =
    [const { AtomicUsize::new(0) }; SECRETS.len()];

struct Inspecting;

unsafe impl GlobalAlloc for Inspecting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if WATCHING.load(Ordering::Relaxed) > 0 && layout.size() >= 6 {
            // The block is still ours until `System.dealloc` below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            for (secret, hits) in SECRETS.iter().zip(&FREED_WITH_SECRET) {
                if block.windows(secret.len()).any(|w| w == *secret) {
                    hits.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Inspecting = Inspecting;

#[test]
fn no_pin_or_puk_bytes_are_freed_unwiped() {
    assert_eq!(PIV_PIN.as_bytes(), &SECRETS[0][..6]);
    assert_eq!(PIV_PUK.as_bytes(), SECRETS[3]);
    let lab = provisioned_lab();
    let now = || SystemClock.now();
    let mut t = token(&lab);
    WATCHING.fetch_add(1, Ordering::SeqCst);

    t.verify_pin(pin(PIV_PIN), FinalTry::NotConfirmed, now())
        .unwrap();
    let signer = t
        .signer(&piv_key(PivSlot::Sign9C), SystemClock.wall())
        .unwrap();
    let digests: Vec<_> = (0..3u8).map(|i| Sha256Digest::of(&[i])).collect();
    let out = sign_all(&mut t, &signer, &digests);
    assert!(out.is_complete(), "{:?}", out.error);
    t.change_pin(pin(PIV_PIN), pin(NEW_PIN), FinalTry::NotConfirmed)
        .unwrap();
    t.verify_pin(pin(NEW_PIN), FinalTry::NotConfirmed, now())
        .unwrap();
    let out = sign_all(&mut t, &signer, &digests);
    assert!(out.is_complete(), "{:?}", out.error);
    t.unblock_pin(pin(PIV_PUK), pin(RESET_PIN)).unwrap();
    t.verify_pin(pin(RESET_PIN), FinalTry::NotConfirmed, now())
        .unwrap();
    t.logout().unwrap();
    drop(t);

    WATCHING.fetch_sub(1, Ordering::SeqCst);
    let found: Vec<String> = SECRETS[..6]
        .iter()
        .zip(&FREED_WITH_SECRET)
        .filter_map(|(secret, hits)| {
            let n = hits.load(Ordering::SeqCst);
            (n > 0).then(|| format!("{} freed unwiped {n} times", hex(secret)))
        })
        .collect();
    assert!(found.is_empty(), "{found:?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Answers every short APDU with `9000` and keeps nothing.
struct Accepting;

impl ApduTransport for Accepting {
    fn reader_name(&self) -> &str {
        "accepting"
    }
    fn card_present(&mut self) -> Result<bool, TransportError> {
        Ok(true)
    }
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(vec![0x90, 0x00])
    }
}

/// The `Command` type itself: its data and every short APDU cut from it (here a chained
/// command of two parts) are wiped before they are freed. The control — a plain `Vec`
/// with the same bytes — shows the allocator does see an unwiped copy.
#[test]
fn command_data_and_its_short_apdus_are_wiped_when_dropped() {
    let hits = || FREED_WITH_SECRET[6].load(Ordering::SeqCst);
    let mut data = MARKER.to_vec();
    data.resize(300, 0x31);
    let control = data.clone();
    WATCHING.fetch_add(1, Ordering::SeqCst);
    let before = hits();
    drop(std::hint::black_box(control));
    let control_hits = hits() - before;

    let before = hits();
    let command = Command::new(0x00, 0x20, 0x00, 0x80, data).without_response();
    let reply = exchange(&mut Accepting, &command).unwrap();
    assert!(reply.sw.is_ok());
    let copy = command.clone();
    drop(std::hint::black_box(command));
    drop(std::hint::black_box(copy));
    let command_hits = hits() - before;
    WATCHING.fetch_sub(1, Ordering::SeqCst);

    assert_eq!(
        control_hits, 1,
        "the control Vec was seen freed with the marker"
    );
    assert_eq!(command_hits, 0, "Command data or an APDU was freed unwiped");
}
