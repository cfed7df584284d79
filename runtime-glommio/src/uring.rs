//! What io_uring needs from the host, checked before any executor starts, and the one message
//! for every way it can be missing (old kernel, seccomp, the sysctl, a low RLIMIT_MEMLOCK):
//! say so and name gatherdns-smol, which serves the same Corefile without io_uring.

use rlimit::Resource;

/// Locked memory glommio refuses to start without (its `MIN_MEMLOCK_LIMIT`), in bytes.
const GLOMMIO_MEMLOCK_MIN: u64 = 512 * 1024;

/// Locked memory wanted per executor: its rings and registered buffers (`IO_MEMORY`, which
/// glommio registers with each of its three rings). Kernels before 5.12 count it all.
const MEMLOCK_PER_EXECUTOR: u64 = 4 * IO_MEMORY as u64;

/// I/O memory of each executor, in bytes. UDP receives that wait on the ring take a buffer of
/// the largest datagram from it; a few sockets per executor need far less than glommio's
/// default of 10 MiB, and more only falls back to the heap.
pub(crate) const IO_MEMORY: usize = 1 << 20;

/// The startup error for a host without a usable io_uring.
pub(crate) fn unavailable(reason: &str) -> String {
    let mut reason = reason.trim_end_matches('.').to_string();
    if let Some(sysctl) = disabled_by_sysctl() {
        reason.push_str(&format!("; sysctl kernel.io_uring_disabled is {sysctl}"));
    }
    format!(
        "io_uring is unavailable ({reason}); run gatherdns-smol instead, \
         which serves the same Corefile with epoll"
    )
}

/// The value of `kernel.io_uring_disabled` when it restricts io_uring (Linux 6.6+).
fn disabled_by_sysctl() -> Option<String> {
    let value = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok()?;
    let value = value.trim();
    (value != "0").then(|| value.to_string())
}

/// Checks what can be checked before starting `executors` executors, and raises the soft
/// RLIMIT_MEMLOCK towards what they want as far as the hard limit allows.
pub(crate) fn prepare(executors: usize) -> Result<(), String> {
    if disabled_by_sysctl().as_deref() == Some("2") {
        return Err(unavailable("disabled on this host"));
    }
    let (soft, hard) = Resource::MEMLOCK
        .get()
        .map_err(|e| unavailable(&format!("cannot read RLIMIT_MEMLOCK: {e}")))?;
    let wanted = MEMLOCK_PER_EXECUTOR.saturating_mul(executors as u64);
    let mut limit = soft;
    if soft < wanted {
        // Beyond the hard limit only with CAP_SYS_RESOURCE; else up to the hard limit. Failing
        // to raise is not fatal by itself: recent kernels do not count io_uring memory against
        // the limit, and glommio falls back to unregistered buffers when it cannot lock them.
        if Resource::MEMLOCK.set(wanted, hard.max(wanted)).is_ok() {
            limit = wanted;
        } else if hard > soft && Resource::MEMLOCK.set(wanted.min(hard), hard).is_ok() {
            limit = wanted.min(hard);
        }
    }
    if limit < GLOMMIO_MEMLOCK_MIN {
        return Err(unavailable(&format!(
            "RLIMIT_MEMLOCK is {} KiB and cannot be raised to the {} KiB glommio needs: \
             raise it with `ulimit -l` or LimitMEMLOCK= in the systemd unit",
            limit / 1024,
            GLOMMIO_MEMLOCK_MIN / 1024
        )));
    }
    Ok(())
}

/// The reason in a panic that glommio raised while setting up its rings (it asserts that the
/// kernel can probe io_uring instead of returning an error).
pub(crate) fn panic_reason(text: &str) -> String {
    if text.contains("probe") || text.contains("IO_URING_RECENT_ENOUGH") {
        "the kernel refused to set up an io_uring: it is older than 5.8, or io_uring is \
         blocked by seccomp or disabled"
            .to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_alternative() {
        let message = unavailable("some reason.");
        assert!(message.starts_with("io_uring is unavailable (some reason"));
        assert!(message.contains("run gatherdns-smol instead"));
    }

    #[test]
    fn probe_panics_are_explained() {
        assert!(
            panic_reason("Failed to register a probe. The most likely").contains("older than 5.8")
        );
        assert_eq!(panic_reason("other"), "other");
    }
}
