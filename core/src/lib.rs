//! gatherdns core.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod answer;
pub mod config;
pub mod error;
pub mod event;
mod gateway;
pub mod transmit;
pub mod wire;

pub use answer::Answer;
pub use config::Config;
pub use error::ConfigError;
pub use event::{Event, QueryLog};
pub use gateway::Gateway;
pub use transmit::{AttemptId, ClientAddr, ClientTransport, Destination, ListenerId, Transmit, UpstreamFailure, UpstreamTransport};
