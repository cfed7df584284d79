//! Where the executors run: `-cpus` pins one to each CPU listed, `-threads` leaves N to the
//! kernel's scheduler, and by default one is pinned to each CPU the process may use.

use gatherdns_host::cli::parse_cpu_list;
use glommio::Placement;

/// How many executors, and where each runs: `-cpus` pins one to each CPU listed, `-threads`
/// leaves N to the kernel's scheduler, and by default one is pinned to each CPU the process
/// may use. `Err` is the startup message.
pub(crate) fn placements(
    threads: Option<usize>,
    cpus: Option<&[usize]>,
) -> Result<Vec<Placement>, String> {
    // The CPUs the affinity mask allows, fewer under a cgroup CPU quota (a container's limit).
    let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
    let allowed = allowed_cpus();
    match (threads, cpus) {
        (Some(n), Some(list)) if n != list.len() => Err(format!(
            "-threads {n} and -cpus with {} CPUs disagree: -cpus alone runs one executor per CPU listed",
            list.len()
        )),
        (_, Some(list)) => list
            .iter()
            .map(|&cpu| {
                if !allowed.is_empty() && !allowed.contains(&cpu) {
                    return Err(format!(
                        "-cpus: CPU {cpu} is not one this process may run on (allowed: {})",
                        cpu_list(&allowed)
                    ));
                }
                Placement::Fixed(cpu)
                    .generate_cpu_set()
                    .map(|_| Placement::Fixed(cpu))
                    .map_err(|e| format!("-cpus: cannot pin an executor to CPU {cpu}: {e}"))
            })
            .collect(),
        // The kernel places executors of an explicit count: which CPUs suit a subset (or an
        // excess) is the operator's call (-cpus, taskset, systemd's CPUAffinity=).
        (Some(n), None) => Ok(vec![Placement::Unbound; n]),
        // Thread per core: each executor keeps its CPU's caches to itself. A CPU that glommio
        // cannot place on (no topology in /sys) gets an unbound executor instead.
        (None, None) if allowed.len() == usable => Ok(allowed
            .into_iter()
            .map(|cpu| match Placement::Fixed(cpu).generate_cpu_set() {
                Ok(_) => Placement::Fixed(cpu),
                Err(_) => Placement::Unbound,
            })
            .collect()),
        // A quota smaller than the mask: as many executors as CPUs' worth of time, unpinned.
        (None, None) => Ok(vec![Placement::Unbound; usable]),
    }
}

/// The CPUs this process may run on (its affinity mask, as `taskset` or a cgroup sets it).
fn allowed_cpus() -> Vec<usize> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(parse_cpu_list)
        .unwrap_or_default()
}

/// [0, 1, 2, 5] → `0,1,2,5`, for messages.
fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_count_is_unbound() {
        assert_eq!(placements(Some(3), None), Ok(vec![Placement::Unbound; 3]));
        assert!(placements(None, None).is_ok_and(|p| !p.is_empty()));
    }

    #[test]
    fn listed_cpus_are_pinned_and_checked() {
        assert_eq!(placements(None, Some(&[0])), Ok(vec![Placement::Fixed(0)]));
        assert_eq!(
            placements(Some(1), Some(&[0])),
            Ok(vec![Placement::Fixed(0)])
        );
        assert!(placements(Some(2), Some(&[0])).is_err_and(|e| e.contains("disagree")));
        assert!(placements(None, Some(&[4000])).is_err_and(|e| e.contains("CPU 4000")));
    }
}
