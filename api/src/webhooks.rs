//! Webhooks (contract section 3): POSTed from their own thread through a bounded queue,
//! with a 5 s timeout, so signaling never waits for them. Failures are logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use kolabmeet_signaling::control::Webhook;

/// Webhooks waiting to be sent at most; more are dropped (and logged).
pub const WEBHOOK_QUEUE: usize = 1024;
/// Timeout of one POST.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The sending side, owned by the control loop. Dropping it stops the thread.
pub struct WebhookSender {
    tx: Option<SyncSender<Webhook>>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread has posted everything and ended.
    done: Option<Receiver<()>>,
    /// Webhooks queued or being posted.
    unsent: Arc<AtomicUsize>,
}

impl WebhookSender {
    /// No webhooks configured: every event is dropped silently.
    pub fn disabled() -> Self {
        Self {
            tx: None,
            thread: None,
            done: None,
            unsent: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts the webhook thread for `url`, sending `token` as `X-Auth-Token`.
    pub fn start(url: String, token: String) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(WEBHOOK_QUEUE);
        let (done_tx, done) = mpsc::channel::<()>();
        let unsent = Arc::new(AtomicUsize::new(0));
        let counter = unsent.clone();
        let thread = std::thread::Builder::new()
            .name("webhooks".into())
            .spawn(move || {
                run(rx, &url, &token, &counter);
                drop(done_tx);
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            done: Some(done),
            unsent,
        })
    }

    /// Posts what is queued, waiting at most `within` (a stopping server must not hang on
    /// a webhook endpoint that does not answer), then stops the thread. Returns how many
    /// webhooks were left unsent (0 when all went out, whatever their answers).
    pub fn finish(mut self, within: Duration) -> usize {
        self.tx.take();
        let Some(done) = self.done.take() else {
            return 0;
        };
        match done.recv_timeout(within) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                0
            }
            Err(RecvTimeoutError::Timeout) => {
                // The thread is left to the process exit.
                self.thread.take();
                self.unsent.load(Ordering::Acquire)
            }
        }
    }

    /// Queues a webhook; never blocks.
    pub fn send(&self, hook: Webhook) {
        let Some(tx) = &self.tx else {
            return;
        };
        self.unsent.fetch_add(1, Ordering::AcqRel);
        match tx.try_send(hook) {
            Ok(()) => {}
            Err(TrySendError::Full(h)) => {
                self.unsent.fetch_sub(1, Ordering::AcqRel);
                tracing::warn!(body = %h.body(), "webhook queue full, dropping webhook");
            }
            Err(TrySendError::Disconnected(h)) => {
                self.unsent.fetch_sub(1, Ordering::AcqRel);
                tracing::error!(body = %h.body(), "webhook thread gone, dropping webhook");
            }
        }
    }
}

impl Drop for WebhookSender {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Webhook>, url: &str, token: &str, unsent: &AtomicUsize) {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(WEBHOOK_TIMEOUT))
        .http_status_as_error(false)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    while let Ok(hook) = rx.recv() {
        let body = hook.body().to_string();
        let result = agent
            .post(url)
            .header("X-Auth-Token", token)
            .header("Content-Type", "application/json")
            .send(body.as_str());
        match result {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(%body, status = resp.status().as_u16(), "webhook sent");
            }
            Ok(resp) => {
                tracing::warn!(%body, status = resp.status().as_u16(), "webhook refused");
            }
            Err(e) => tracing::warn!(%body, error = %e, "webhook failed"),
        }
        unsent.fetch_sub(1, Ordering::AcqRel);
    }
}
