//! The master's state: `App`, shared by every thread, and `Local`, what one
//! runtime thread owns.

use std::rc::Rc;
use std::sync::Arc;

use http1::{Shutdown, Timeouts};

use crate::client::VolumeClient;
use crate::config::{Cluster, S3Config};
use crate::health::Health;
use crate::index::Index;
use crate::ops::locks::KeyLocks;

/// State shared by every thread.
pub struct App {
    pub cluster: Cluster,
    pub index: Arc<Index>,
    pub locks: KeyLocks,
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
            cluster,
            index,
            locks: KeyLocks::default(),
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
    /// Pooled connections to the volumes, for this thread's requests.
    pub client: Rc<VolumeClient>,
    /// Every request on this listener is an S3 request (`--s3-port`).
    pub s3_only: bool,
}

impl Local {
    pub fn new(app: Arc<App>, s3_only: bool) -> Local {
        let client = VolumeClient::new(app.cluster.voltimeout, app.cluster.volume_timeout);
        Local {
            app,
            client: Rc::new(client),
            s3_only,
        }
    }
}
