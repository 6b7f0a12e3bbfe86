//! The backend flags every balancer shares: `-b/--backend` (repeatable)
//! and `--demo`, with the zero-setup rule of [`crate::demo`].

use crate::demo::{Chosen, choose};

/// Which backends to balance over.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// A backend, HOST:PORT[:WEIGHT] (`http://` in front is fine; TLS
    /// backends are refused); repeat the flag for more. Default:
    /// 127.0.0.1:9001 to 9003, or, when none of those answers, three demo
    /// backends started in this process.
    #[arg(short, long = "backend", value_name = "HOST:PORT[:WEIGHT]")]
    pub backends: Vec<String>,
    /// Start three demo backends in this process and balance over them.
    #[arg(long, conflicts_with = "backends")]
    pub demo: bool,
}

impl BackendArgs {
    /// The backends to use; demo ones (started when asked for or when
    /// nothing else is there) get `demo_weights`.
    pub fn choose(&self, demo_weights: &[u32]) -> std::io::Result<Chosen> {
        choose(&self.backends, self.demo, demo_weights)
    }
}
