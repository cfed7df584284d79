//! What the core keeps between queries: CoreDNS's `cache` in front of a server block
//! (`response`), each cluster's last good part of gathered answers (`parts`), and the bounded
//! map both are built on (`lru`). The settings the Corefile gives them are in `config::cache`.

pub(crate) mod counters;
pub(crate) mod lru;
pub(crate) mod parts;
pub(crate) mod response;

#[cfg(test)]
mod tests;
