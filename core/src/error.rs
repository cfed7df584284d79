//! Configuration errors: the only `Err` the core returns. Network input never errors; it is
//! answered or counted and dropped.

use crate::config::Location;

/// A configuration that cannot be used, with where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A problem at a place in a Corefile (or a file it names).
    #[error("{location}: {message}")]
    At {
        /// File and line.
        location: Location,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// A problem with no single place, e.g. a file that cannot be read.
    #[error("{0}")]
    General(String),
    /// Several problems, one line each (every directive gatherdns does not serve).
    #[error("{}", lines(.0))]
    Several(Vec<ConfigError>),
}

fn lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// One error, or all of them.
    pub fn several(mut errors: Vec<ConfigError>) -> Self {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            ConfigError::Several(errors)
        }
    }

    /// An error at `location`.
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        ConfigError::At {
            location: location.clone(),
            message: message.into(),
        }
    }
}
