//! A build without the `kubernetes` feature: no Kubernetes client is compiled in, so a
//! Corefile whose `multicluster` reads the Kubernetes API is refused at startup (and by
//! `-validate`) with a message that says so and what to do instead.

use std::rc::Rc;
use std::time::Duration;

use gatherdns_core::config::Config;
use gatherdns_core::kube_view::kubernetes_sources;
use gatherdns_core::metrics::Snapshot;

use crate::driver::Driver;
use crate::runtime::Runtime;

/// Nothing to follow in this build.
pub(crate) struct Prepared;

/// Refuses a configuration that needs the Kubernetes API.
pub(crate) fn prepare(config: &Config, _validate: bool) -> Result<Prepared, String> {
    match kubernetes_sources(config).first() {
        None => Ok(Prepared),
        Some(watched) => Err(format!(
            "{}: multicluster: answering from the Kubernetes API ({}) needs the `kubernetes` \
             feature, which this build of gatherdns was built without; rebuild with the default \
             features, or list the clusters as \"SUFFIX CLUSTER_ID\" lines to gather from their DNS",
            watched.location, watched.source
        )),
    }
}

pub(crate) fn follow(_: Prepared) -> Result<(), String> {
    Ok(())
}

pub(crate) fn wait_until_listed(_: Duration) {}

pub(crate) fn attach<R: Runtime>(_: &Rc<Driver<R>>) {}

pub(crate) fn add_metrics(_: &mut Snapshot) {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use gatherdns_core::corefile::{parse_corefile_text, ParseOptions};
    use gatherdns_core::loader::MemLoader;

    fn prepare(text: &str) -> Result<super::Prepared, String> {
        let config = parse_corefile_text(
            Path::new("Corefile"),
            text,
            &MemLoader::new(),
            &ParseOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        super::prepare(&config, true)
    }

    #[test]
    fn a_corefile_that_reads_the_api_is_refused_with_its_line() {
        let error = prepare(". {\n  multicluster clusterset.local\n}\n").err();
        assert_eq!(
            error.as_deref(),
            Some(
                "Corefile:2: multicluster: answering from the Kubernetes API (in-cluster) needs \
                 the `kubernetes` feature, which this build of gatherdns was built without; \
                 rebuild with the default features, or list the clusters as \"SUFFIX CLUSTER_ID\" \
                 lines to gather from their DNS"
            )
        );
        let gathered =
            "c.local {\n  multicluster {\n    a.local. a\n  }\n  forward a.local. 10.0.0.1\n}\n";
        assert!(prepare(gathered).is_ok());
    }
}
