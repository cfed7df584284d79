//! The Kubernetes API source of `multicluster`: one background thread per process runs a
//! current-thread tokio runtime with the `kube` client, lists and watches the ServiceImports
//! and EndpointSlices of every source the Corefile names, and hands each executor's gateway
//! a new view as `hosts` file reloads are handed over (`watch.rs`): a task per executor takes
//! the latest views from the hub when woken. Nothing of it is on the query path.
//!
//! Startup: the sources' client configurations are built before serving (a bad kubeconfig
//! stops the server), then serving waits up to 5 s for every source's first list, as
//! coredns/multicluster does, and starts anyway; until then the zone answers SERVFAIL.

mod objects;
mod reflector;
mod source;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use gatherdns_core::config::{Config, KubernetesSource};
use gatherdns_core::kube_view::{kubernetes_sources, KubernetesView, WatchedSource};
use gatherdns_core::metrics::{families, Snapshot};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::driver::Driver;
use crate::log;
use crate::runtime::Runtime;

/// The process's one hub; made by the first [`follow`], before the executors start.
static HUB: OnceLock<Hub> = OnceLock::new();

/// The sources of a configuration with their client configurations, built and checked.
pub(crate) struct Prepared(Vec<(WatchedSource, Option<kube::Config>)>);

/// A resource's state for the metrics: synced now, and failures so far.
#[derive(Clone, Copy, Default)]
struct Status {
    synced: bool,
    errors: u64,
}

/// What the Kubernetes thread and the executors share.
pub(crate) struct Hub {
    /// The last view of each source, with the number of its publication.
    views: Mutex<BTreeMap<KubernetesSource, (u64, Arc<KubernetesView>)>>,
    published: Mutex<u64>,
    /// One wake-up queue per executor (bounded to 1: a pending wake-up covers every view).
    executors: Mutex<Vec<async_channel::Sender<()>>>,
    status: Mutex<BTreeMap<(String, &'static str), Status>>,
    /// The sources of the configuration in force.
    sources: Mutex<Vec<KubernetesSource>>,
    thread: Mutex<Option<UnboundedSender<Prepared>>>,
}

/// A poisoned lock only means a thread panicked while holding it; the data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    fn new() -> Hub {
        Hub {
            views: Mutex::new(BTreeMap::new()),
            published: Mutex::new(0),
            executors: Mutex::new(Vec::new()),
            status: Mutex::new(BTreeMap::new()),
            sources: Mutex::new(Vec::new()),
            thread: Mutex::new(None),
        }
    }

    /// A new view of a source: stored, and every executor woken.
    fn publish(&self, view: Arc<KubernetesView>) {
        let number = {
            let mut published = lock(&self.published);
            *published += 1;
            *published
        };
        lock(&self.views).insert(view.source().clone(), (number, view));
        for executor in lock(&self.executors).iter() {
            // Full: a wake-up is already pending and will see this view too.
            let _ = executor.try_send(());
        }
    }

    /// Sets a resource's synced state.
    fn set_synced(&self, source: &str, resource: &'static str, synced: bool) {
        let mut status = lock(&self.status);
        status
            .entry((source.to_string(), resource))
            .or_default()
            .synced = synced;
    }

    fn count_error(&self, source: &str, resource: &'static str) {
        let mut status = lock(&self.status);
        status
            .entry((source.to_string(), resource))
            .or_default()
            .errors += 1;
    }

    /// The views published after those in `seen`, which is brought up to date.
    fn fresh(&self, seen: &mut BTreeMap<KubernetesSource, u64>) -> Vec<Arc<KubernetesView>> {
        let views = lock(&self.views);
        let mut fresh = Vec::new();
        for (source, (number, view)) in views.iter() {
            if seen.get(source) != Some(number) {
                seen.insert(source.clone(), *number);
                fresh.push(view.clone());
            }
        }
        fresh
    }

    /// True when every source in force has a view.
    fn all_listed(&self) -> bool {
        let views = lock(&self.views);
        lock(&self.sources).iter().all(|s| views.contains_key(s))
    }
}

/// Checks the Kubernetes sources of `config` and builds their client configurations: a
/// kubeconfig that cannot be read or has no such context, or no in-cluster environment, is
/// an error naming the Corefile line. With `validate`, the in-cluster sources are not
/// checked (the environment is the pod's, not the machine's that validates).
pub(crate) fn prepare(config: &Config, validate: bool) -> Result<Prepared, String> {
    let sources = kubernetes_sources(config);
    if sources.is_empty() {
        return Ok(Prepared(Vec::new()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the Kubernetes client's runtime: {e}"))?;
    let mut prepared = Vec::with_capacity(sources.len());
    for watched in sources {
        let at = &watched.location;
        let client_config = match &watched.source.kubeconfig {
            None if validate => None,
            None => Some(kube::Config::incluster().map_err(|e| {
                format!(
                    "{at}: multicluster: no in-cluster Kubernetes configuration ({e}); outside a \
                     Kubernetes pod, give \"kubeconfig KUBECONFIG [CONTEXT]\""
                )
            })?),
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    format!("{at}: multicluster: kubeconfig {}: {e}", path.display())
                })?;
                let options = kube::config::KubeConfigOptions {
                    context: watched.source.context.clone(),
                    ..Default::default()
                };
                let built = runtime
                    .block_on(kube::Config::from_custom_kubeconfig(file, &options))
                    .map_err(|e| {
                        format!("{at}: multicluster: kubeconfig {}: {e}", path.display())
                    })?;
                Some(built)
            }
        };
        prepared.push((watched, client_config));
    }
    Ok(Prepared(prepared))
}

/// Makes the sources of `prepared` the ones followed: new ones start, dropped ones stop
/// (their views are forgotten; the gateways keep theirs until a reload drops the directive).
/// The first call makes the hub, which the executors then join ([`attach`]).
pub(crate) fn follow(prepared: Prepared) -> Result<(), String> {
    let hub = HUB.get_or_init(Hub::new);
    let sources: Vec<KubernetesSource> = prepared.0.iter().map(|(w, _)| w.source.clone()).collect();
    lock(&hub.views).retain(|source, _| sources.contains(source));
    *lock(&hub.sources) = sources;
    let mut thread = lock(&hub.thread);
    if thread.is_none() {
        if prepared.0.is_empty() {
            return Ok(());
        }
        let (commands, inbox) = unbounded_channel();
        thread::Builder::new()
            .name("kubernetes".into())
            .spawn(move || serve(inbox, hub))
            .map_err(|e| format!("cannot start the Kubernetes client thread: {e}"))?;
        *thread = Some(commands);
    }
    if let Some(commands) = thread.as_ref() {
        commands
            .send(prepared)
            .map_err(|_| "the Kubernetes client thread has stopped".to_string())?;
    }
    Ok(())
}

/// The Kubernetes thread: a current-thread runtime running one task per source.
fn serve(mut inbox: UnboundedReceiver<Prepared>, hub: &'static Hub) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error(format_args!(
                "plugin/multicluster: cannot start the Kubernetes client's runtime: {e}"
            ));
            return;
        }
    };
    runtime.block_on(async move {
        let mut running: BTreeMap<KubernetesSource, (bool, tokio::task::JoinHandle<()>)> =
            BTreeMap::new();
        while let Some(Prepared(wanted)) = inbox.recv().await {
            running.retain(|source, (endpoints, task)| {
                let keep = wanted
                    .iter()
                    .any(|(w, _)| &w.source == source && w.endpoints == *endpoints);
                if !keep {
                    task.abort();
                }
                keep
            });
            for (watched, config) in wanted {
                let Some(config) = config else { continue };
                if running.contains_key(&watched.source) {
                    continue;
                }
                let client = match kube::Client::try_from(config) {
                    Ok(client) => client,
                    Err(e) => {
                        log::error(format_args!(
                            "plugin/multicluster: {}: cannot make a Kubernetes client: {e}",
                            watched.source
                        ));
                        continue;
                    }
                };
                let source = watched.source.clone();
                let task = tokio::spawn(source::run(watched.clone(), client, hub));
                running.insert(source, (watched.endpoints, task));
            }
        }
    });
}

/// Waits (at most `limit`) until every source has been listed once, logging as
/// coredns/multicluster does while it waits.
pub(crate) fn wait_until_listed(limit: Duration) {
    let Some(hub) = HUB.get() else { return };
    if lock(&hub.sources).is_empty() {
        return;
    }
    let start = Instant::now();
    let mut next_log = start + Duration::from_millis(500);
    while !hub.all_listed() {
        let now = Instant::now();
        if now >= start + limit {
            log::warning("plugin/multicluster: starting server with unsynced Kubernetes API");
            return;
        }
        if now >= next_log {
            log::info("plugin/multicluster: waiting for Kubernetes API before starting server");
            next_log += Duration::from_millis(500);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Joins this executor's gateway to the hub: it takes the views there now, before its first
/// query, and every later one when woken.
pub(crate) fn attach<R: Runtime>(driver: &Rc<Driver<R>>) {
    let Some(hub) = HUB.get() else { return };
    let (wake, woken) = async_channel::bounded(1);
    lock(&hub.executors).push(wake);
    let mut seen = BTreeMap::new();
    take(driver, hub, &mut seen);
    let driver = driver.clone();
    R::detach(R::spawn(async move {
        while woken.recv().await.is_ok() {
            take(&driver, hub, &mut seen);
        }
    }));
}

fn take<R: Runtime>(driver: &Rc<Driver<R>>, hub: &Hub, seen: &mut BTreeMap<KubernetesSource, u64>) {
    for view in hub.fresh(seen) {
        driver.handle(|gateway, _| gateway.handle_kubernetes_view(view));
    }
}

/// `gatherdns_kubernetes_synced` and `gatherdns_kubernetes_errors_total`, per source and
/// resource.
pub(crate) fn add_metrics(snapshot: &mut Snapshot) {
    let Some(hub) = HUB.get() else { return };
    for ((source, resource), status) in lock(&hub.status).iter() {
        let labels = [source.as_str(), resource];
        let synced = if status.synced { 1.0 } else { 0.0 };
        snapshot.gauge(&families::KUBERNETES_SYNCED, &labels, synced);
        snapshot.counter(&families::KUBERNETES_ERRORS, &labels, status.errors);
    }
}
