//! Views of the Kubernetes API for `multicluster`: the host's client lists and watches
//! ServiceImports and EndpointSlices and hands every gateway a new view as a `hosts` file's
//! new text is handed over — pure data in, the blocks answer from it at once.

use std::sync::Arc;

use super::Gateway;
use crate::block::Block;
use crate::kube_view::KubernetesView;

impl Gateway {
    /// A new view of one Kubernetes source: every `multicluster` of the configuration in
    /// force that reads that source answers from it from now on (queries in flight under an
    /// older configuration keep what they had). The gateway keeps the last view of each
    /// source for the configuration a reload brings.
    pub fn handle_kubernetes_view(&mut self, view: Arc<KubernetesView>) {
        for block in self.blocks.current_mut() {
            if let Some(m) = block.multicluster.as_mut() {
                m.install_view(&view);
            }
        }
        self.kube_views.insert(view.source().clone(), view);
    }

    /// Gives the blocks of a new configuration the views their sources already have, and
    /// forgets the views of sources it no longer reads.
    pub(super) fn attach_kubernetes_views(&mut self, blocks: &mut [Block]) {
        let mut used = Vec::new();
        for m in blocks.iter_mut().filter_map(|b| b.multicluster.as_mut()) {
            let Some(source) = m.kubernetes.as_ref().map(|k| k.source.clone()) else {
                continue;
            };
            if let Some(view) = self.kube_views.get(&source) {
                m.install_view(view);
            }
            used.push(source);
        }
        self.kube_views.retain(|source, _| used.contains(source));
    }

    /// `/ready`'s word on each Kubernetes source not listed yet.
    pub(super) fn kubernetes_not_ready(&self) -> Vec<String> {
        let mut waiting: Vec<String> = Vec::new();
        let sources = self
            .blocks
            .current()
            .iter()
            .filter_map(|b| b.multicluster.as_ref()?.unsynced_source());
        for source in sources {
            let line = format!(
                "multicluster: ServiceImports and EndpointSlices of {source} not synced yet"
            );
            if !waiting.contains(&line) {
                waiting.push(line);
            }
        }
        waiting
    }
}
