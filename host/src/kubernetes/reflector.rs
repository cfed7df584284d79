//! Keeping one resource in step with the API, as client-go's reflector does: list it (pages
//! of 500), then watch from the list's resourceVersion (bookmarks on); a watch that ends is
//! resumed from the last resourceVersion seen, a `410 Gone` (the version was compacted)
//! lists again, and any other failure is retried after a backoff while the last list keeps
//! answering. Every change goes to the source's task as an [`Update`].

use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::UnboundedSender;

/// Objects per page of a list.
const PAGE: u32 = 500;
/// How long the server keeps one watch open before ending it (client-go picks 5–10 min; a
/// watch is resumed at once, so the figure only bounds how stale a silent connection gets).
const WATCH_TIMEOUT_SECS: u32 = 290;
/// The first retry after a failure, doubled per failure in a row up to the cap.
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A watch that ends sooner than this is resumed after `BACKOFF_START`, not at once.
const QUICK_END: Duration = Duration::from_secs(1);

/// What a reflector tells its source.
pub(crate) enum Update<K> {
    /// A complete list: the store becomes exactly these objects.
    Listed(Vec<K>),
    /// Added or modified.
    Applied(K),
    Deleted(K),
    /// The watch is established (`true`), or the API cannot be reached (`false`).
    Synced(bool),
    /// A failed list or watch, for the log and the error counter.
    Failed(String),
}

/// How a watch ended.
enum Ended {
    /// Normally (the server's timeout): watch again from the last version.
    Resume,
    /// The version is gone: list again.
    Relist,
    Failed(String),
}

/// Lists and watches `api` (with `labels` as the label selector) for as long as the task
/// runs; ends only when the source stops listening.
pub(crate) async fn reflect<K>(
    api: Api<K>,
    labels: Option<&str>,
    updates: UnboundedSender<Update<K>>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut version: Option<String> = None;
    let mut failures = 0u32;
    loop {
        if updates.is_closed() {
            return;
        }
        let outcome = match &version {
            None => match list(&api, labels).await {
                Ok((objects, listed)) => {
                    version = Some(listed);
                    let _ = updates.send(Update::Listed(objects));
                    let _ = updates.send(Update::Synced(true));
                    failures = 0;
                    continue;
                }
                Err(e) => Ended::Failed(format!("list: {e}")),
            },
            Some(from) => {
                let started = Instant::now();
                let ended = watch(
                    &api,
                    labels,
                    from.clone(),
                    &mut version,
                    &updates,
                    &mut failures,
                )
                .await;
                // A server that ends every watch at once must not make this loop spin.
                if matches!(ended, Ended::Resume) && started.elapsed() < QUICK_END {
                    tokio::time::sleep(BACKOFF_START).await;
                }
                ended
            }
        };
        match outcome {
            Ended::Resume => {}
            Ended::Relist => version = None,
            Ended::Failed(why) => {
                let _ = updates.send(Update::Synced(false));
                let _ = updates.send(Update::Failed(why));
                let delay = BACKOFF_START
                    .saturating_mul(1u32 << failures.min(8))
                    .min(BACKOFF_CAP);
                failures = failures.saturating_add(1);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Every object, page by page, and the resourceVersion of the list.
async fn list<K>(api: &Api<K>, labels: Option<&str>) -> Result<(Vec<K>, String), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut params = ListParams::default().limit(PAGE);
    if let Some(labels) = labels {
        params = params.labels(labels);
    }
    let mut objects = Vec::new();
    loop {
        let page = api.list(&params).await?;
        objects.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok((objects, page.metadata.resource_version.unwrap_or_default())),
        }
    }
}

/// One watch from `from`, until it ends; `version` follows every event and bookmark.
async fn watch<K>(
    api: &Api<K>,
    labels: Option<&str>,
    from: String,
    version: &mut Option<String>,
    updates: &UnboundedSender<Update<K>>,
    failures: &mut u32,
) -> Ended
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut params = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
    if let Some(labels) = labels {
        params = params.labels(labels);
    }
    let stream = match api.watch(&params, &from).await {
        Ok(stream) => stream,
        Err(kube::Error::Api(e)) if e.code == 410 => return Ended::Relist,
        Err(e) => return Ended::Failed(format!("watch: {e}")),
    };
    let _ = updates.send(Update::Synced(true));
    *failures = 0;
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => return Ended::Failed(format!("watch: {e}")),
        };
        let seen = |object: &K| object.meta().resource_version.clone();
        match event {
            WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                *version = seen(&object).or(version.take());
                let _ = updates.send(Update::Applied(object));
            }
            WatchEvent::Deleted(object) => {
                *version = seen(&object).or(version.take());
                let _ = updates.send(Update::Deleted(object));
            }
            WatchEvent::Bookmark(mark) => *version = Some(mark.metadata.resource_version),
            WatchEvent::Error(e) if e.code == 410 => return Ended::Relist,
            WatchEvent::Error(e) => {
                return Ended::Failed(format!("watch: {} ({})", e.message, e.code))
            }
        }
    }
    Ended::Resume
}
