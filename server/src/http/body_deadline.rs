//! A request body that must arrive whole within a deadline.
//!
//! hyper reads a request body only while the handler asks for it, so a client that
//! sends its body one byte at a time would hold the handler (and whatever it holds)
//! for as long as it likes. [`DeadlineBody`] fails the body once its deadline passes,
//! counted from when the request head was read: the handler's read ends with an error
//! (`SS_BAD_REQUEST`, "… timed out …"), and hyper closes the connection after the answer.
//!
//! The deadline is total, not per read: a trickle of one byte just before each idle
//! timeout would otherwise never end. The timer is only armed when the body is not
//! ready at once, so the usual small body, read together with the head, costs no timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// The body did not arrive whole within the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body timed out: not received within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// Errors of a [`DeadlineBody`]: the inner body's, or [`BodyTimedOut`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// `inner`, failing with [`BodyTimedOut`] once `timeout` has passed since
    /// [`DeadlineBody::new`].
    pub struct DeadlineBody<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: Option<Sleep>,
        deadline: Instant,
        timeout: Duration,
        expired: bool,
    }
}

impl<B> DeadlineBody<B> {
    /// `inner`, which must be read whole within `timeout` from now.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            sleep: None,
            deadline: Instant::now() + timeout,
            timeout,
            expired: false,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if *this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.is_none() {
            this.sleep
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                *this.expired = true;
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(*this.timeout)))))
            }
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// A body that yields `left` one-byte chunks, one every `every`, then ends.
    struct Trickle {
        left: usize,
        every: Duration,
        sleep: Pin<Box<Sleep>>,
    }

    fn trickle(left: usize, every: Duration) -> Trickle {
        Trickle {
            left,
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
        }
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            std::task::ready!(self.sleep.as_mut().poll(cx));
            self.left -= 1;
            let next = Instant::now() + self.every;
            self.sleep.as_mut().reset(next);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    #[tokio::test]
    async fn a_body_in_time_is_read_whole() {
        let body = DeadlineBody::new(
            trickle(5, Duration::from_millis(20)),
            Duration::from_secs(5),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"xxxxx");
    }

    #[tokio::test]
    async fn a_trickle_is_cut_at_the_total_deadline_not_per_read() {
        // Each chunk comes well within the timeout, but all of them would take 4 s.
        let body = DeadlineBody::new(
            trickle(200, Duration::from_millis(20)),
            Duration::from_millis(300),
        );
        let started = Instant::now();
        let err = body.collect().await.err().unwrap();
        assert!(err.is::<BodyTimedOut>(), "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
}
