//! One Kubernetes source: a reflector per resource (ServiceImports, and EndpointSlices unless
//! no directive wants them), the objects as the core keeps them, and a new view for the hub
//! shortly after each change that matters to DNS (changes in the same 100 ms make one view).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatherdns_core::kube_view::{self, KubernetesView, WatchedSource};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use tokio::sync::mpsc::unbounded_channel;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::objects::{self, ServiceImport, SERVICE_NAME_LABEL};
use super::reflector::{reflect, Update};
use super::Hub;
use crate::log;

/// How long a change waits for the ones that follow it before a view is made.
const COALESCE: Duration = Duration::from_millis(100);

pub(super) const IMPORTS: &str = "serviceimports";
pub(super) const SLICES: &str = "endpointslices";

/// The reflectors of a source stop with it.
struct Children(Vec<JoinHandle<()>>);

impl Drop for Children {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Objects of one resource as the core keeps them; `None` until the first list.
type Store<T> = Option<BTreeMap<(String, String), T>>;

/// Follows `watched` through `client` for as long as the task runs.
pub(super) async fn run(watched: WatchedSource, client: kube::Client, hub: &'static Hub) {
    let name = watched.source.to_string();
    hub.set_synced(&name, IMPORTS, false);
    if watched.endpoints {
        hub.set_synced(&name, SLICES, false);
    }
    let (imports_tx, mut imports_rx) = unbounded_channel();
    let (slices_tx, mut slices_rx) = unbounded_channel();
    let mut children = vec![tokio::spawn(reflect(
        Api::<ServiceImport>::all(client.clone()),
        None,
        imports_tx,
    ))];
    if watched.endpoints {
        children.push(tokio::spawn(reflect(
            Api::<EndpointSlice>::all(client),
            Some(SERVICE_NAME_LABEL),
            slices_tx,
        )));
    } else {
        drop(slices_tx);
    }
    let _children = Children(children);
    let mut imports: Store<kube_view::ServiceImport> = None;
    let mut slices: Store<kube_view::EndpointSlice> = None;
    let mut due: Option<Instant> = None;
    // Whether each resource's last list or watch failed (for the log line of its recovery).
    let (mut imports_failing, mut slices_failing) = (false, false);
    loop {
        let changed = tokio::select! {
            Some(update) = imports_rx.recv() => {
                note(hub, &name, IMPORTS, &update, imports.is_some(), &mut imports_failing);
                apply(&mut imports, update, |o| objects::key(&o.metadata), objects::import)
            }
            Some(update) = slices_rx.recv(), if watched.endpoints => {
                note(hub, &name, SLICES, &update, slices.is_some(), &mut slices_failing);
                apply(&mut slices, update, |o| objects::key(&o.metadata), |o| Some(objects::slice(o)))
            }
            () = sleep_until(due), if due.is_some() => {
                due = None;
                publish(hub, &watched, imports.as_ref(), slices.as_ref());
                false
            }
            else => return,
        };
        if changed && due.is_none() {
            due = Some(Instant::now() + COALESCE);
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(at) = due {
        tokio::time::sleep_until(at).await;
    }
}

/// Applies an update to a store; true if what DNS answers from changed.
fn apply<K, T: PartialEq>(
    store: &mut Store<T>,
    update: Update<K>,
    key: impl Fn(&K) -> (String, String),
    keep: impl Fn(&K) -> Option<T>,
) -> bool {
    match update {
        Update::Listed(objects) => {
            let fresh: BTreeMap<_, _> = objects
                .iter()
                .filter_map(|o| Some((key(o), keep(o)?)))
                .collect();
            let changed = store.as_ref() != Some(&fresh);
            *store = Some(fresh);
            changed
        }
        Update::Applied(object) => {
            let Some(map) = store.as_mut() else {
                return false;
            };
            match keep(&object) {
                Some(kept) if map.get(&key(&object)) == Some(&kept) => false,
                Some(kept) => {
                    map.insert(key(&object), kept);
                    true
                }
                None => map.remove(&key(&object)).is_some(),
            }
        }
        Update::Deleted(object) => store
            .as_mut()
            .is_some_and(|map| map.remove(&key(&object)).is_some()),
        Update::Synced(_) | Update::Failed(_) => false,
    }
}

/// The hub's status of a resource, and the log line of a failure or a recovery.
fn note<K>(
    hub: &Hub,
    source: &str,
    resource: &'static str,
    update: &Update<K>,
    listed: bool,
    failing: &mut bool,
) {
    match update {
        Update::Synced(synced) => {
            hub.set_synced(source, resource, *synced);
            if *synced && std::mem::take(failing) {
                log::info(format_args!(
                    "plugin/multicluster: {source}: {resource}: watching the Kubernetes API again"
                ));
            }
        }
        Update::Failed(why) => {
            *failing = true;
            hub.count_error(source, resource);
            let keeping = if listed {
                "answering from the last list"
            } else {
                "not listed yet"
            };
            log::warning(format_args!(
                "plugin/multicluster: {source}: {resource}: {why}; {keeping}"
            ));
        }
        Update::Listed(_) | Update::Applied(_) | Update::Deleted(_) => {}
    }
}

/// Hands the hub a view once every watched resource has been listed.
fn publish(
    hub: &Hub,
    watched: &WatchedSource,
    imports: Option<&BTreeMap<(String, String), kube_view::ServiceImport>>,
    slices: Option<&BTreeMap<(String, String), kube_view::EndpointSlice>>,
) {
    let Some(imports) = imports else { return };
    let slices = match (watched.endpoints, slices) {
        (true, None) => return,
        (true, Some(map)) => Some(map.values().cloned().collect()),
        (false, _) => None,
    };
    // coredns/multicluster's SOA serial: the Unix time of the last change.
    let serial = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let view = KubernetesView::new(
        watched.source.clone(),
        serial,
        imports.values().cloned().collect(),
        slices,
    );
    hub.publish(Arc::new(view));
}
