//! The master's state: `App`, shared by every thread, and `Local`, what one
//! runtime thread owns.

use std::sync::Arc;

use http1::{Shutdown, Timeouts};

use crate::config::{Cluster, S3Config};
use crate::health::Health;
use crate::index::Index;
use crate::ops::locks::KeyLocks;
use crate::Store;

/// State shared by every thread.
pub struct App {
    pub cluster: Arc<Cluster>,
    pub index: Arc<Index>,
    pub locks: Arc<KeyLocks>,
    pub shutdown: Arc<Shutdown>,
    pub timeouts: Timeouts,
    /// Client connections open at once (per listener); 0: half the
    /// descriptors the process may open.
    pub max_connections: usize,
    pub s3: S3Config,
    /// The volumes' health and the index's counts, for the admin listener.
    pub health: Arc<Health>,
}

impl App {
    pub fn new(cluster: Cluster, index: Arc<Index>, s3: S3Config) -> App {
        App {
            health: Arc::new(Health::new(&cluster.volumes)),
            cluster: Arc::new(cluster),
            locks: Arc::new(KeyLocks::for_index(&index)),
            index,
            shutdown: Shutdown::new(),
            timeouts: Timeouts::default(),
            max_connections: 0,
            s3,
        }
    }
}

impl App {
    /// An `App` with the connection flags of `listen` applied.
    pub fn with_flags(
        cluster: Cluster,
        index: Arc<Index>,
        s3: S3Config,
        listen: &crate::config::ListenArgs,
    ) -> App {
        let mut app = App::new(cluster, index, s3);
        app.timeouts.idle = listen.idle_timeout;
        app.max_connections = listen.max_connections;
        app
    }
}

/// State of one runtime thread.
pub struct Local {
    pub app: Arc<App>,
    /// The index, cluster and locks, with this thread's pooled
    /// connections to the volumes.
    pub store: Store,
    /// Every request on this listener is an S3 request (`--s3-port`).
    pub s3_only: bool,
}

impl Local {
    pub fn new(app: Arc<App>, s3_only: bool) -> Local {
        let store = Store::new(app.cluster.clone(), app.index.clone(), app.locks.clone());
        Local {
            app,
            store,
            s3_only,
        }
    }
}
