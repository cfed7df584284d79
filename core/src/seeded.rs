//! The hasher of the core's hash tables: keyed from the gateway's seed (`RandomState` would
//! read OS randomness), and cheap, since the keys are counters, CSPRNG-drawn IDs and names
//! hashed with a secret key.

use std::hash::{BuildHasher, Hasher};

/// The hasher of the tables: keyed from the gateway's seed (`RandomState` would read OS
/// randomness), and cheap, since the keys are counters and CSPRNG-drawn IDs that a client
/// cannot choose.
#[derive(Clone)]
pub(crate) struct Seeded(u64);

impl Seeded {
    /// A hasher keyed by `seed`.
    pub(crate) fn new(seed: u64) -> Seeded {
        Seeded(seed)
    }
}

impl BuildHasher for Seeded {
    type Hasher = Mix;
    fn build_hasher(&self) -> Mix {
        Mix(self.0)
    }
}

pub(crate) struct Mix(u64);

impl Hasher for Mix {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits, which a product mixes least.
        crate::wire::avalanche(self.0)
    }
}
