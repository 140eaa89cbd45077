//! Runtimes and listeners, for servers and tools: one
//! monoio runtime per thread, each accepting on its own `SO_REUSEPORT`
//! listener; io_uring when the kernel allows it, epoll otherwise (and when
//! `MONOIO_FORCE_LEGACY_DRIVER=1` asks for it).

use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use monoio::time::TimeDriver;
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};

pub type Runtime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverKind {
    IoUring,
    Epoll,
}

impl std::fmt::Display for DriverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DriverKind::IoUring => "io_uring",
            DriverKind::Epoll => "epoll",
        })
    }
}

/// Builds a runtime for the calling thread. On io_uring, completions are
/// delivered cooperatively (`COOP_TASKRUN`), which measured fastest for small
/// requests; kernels that refuse the flag get a plain ring.
pub fn build() -> std::io::Result<(Runtime, DriverKind)> {
    if monoio::utils::detect_uring() {
        let mut urb = io_uring::IoUring::builder();
        urb.setup_coop_taskrun().setup_taskrun_flag();
        let tuned = RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(1024)
            .uring_builder(urb)
            .attach_thread_pool(blocking_pool())
            .enable_timer()
            .build();
        if let Ok(rt) = tuned {
            return Ok((rt.into(), DriverKind::IoUring));
        }
        let plain = RuntimeBuilder::<IoUringDriver>::new()
            .attach_thread_pool(blocking_pool())
            .enable_timer()
            .build();
        if let Ok(rt) = plain {
            return Ok((rt.into(), DriverKind::IoUring));
        }
    }
    let rt = RuntimeBuilder::<LegacyDriver>::new()
        .attach_thread_pool(blocking_pool())
        .enable_timer()
        .build()?;
    Ok((rt.into(), DriverKind::Epoll))
}

/// Threads for file I/O on the epoll driver (monoio runs its file ops
/// there), shared by all runtimes of the process.
fn blocking_pool() -> Box<dyn monoio::blocking::ThreadPool + Send> {
    static POOL: std::sync::OnceLock<monoio::blocking::DefaultThreadPool> =
        std::sync::OnceLock::new();
    Box::new(
        POOL.get_or_init(|| monoio::blocking::DefaultThreadPool::new(8))
            .clone(),
    )
}

/// Binds `threads` listeners on one address with `SO_REUSEPORT`, so each
/// runtime accepts its own connections. A plain bind first makes sure no
/// other process is on the port (reuse-port would otherwise share it
/// silently); port 0 picks a free port for all of them.
/// Errors name the address, port included.
pub fn bind_listeners(addr: SocketAddr, threads: usize) -> std::io::Result<Vec<StdListener>> {
    bind_each(addr, threads)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

fn bind_each(addr: SocketAddr, threads: usize) -> std::io::Result<Vec<StdListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let probe = StdListener::bind(addr)?;
    let addr = probe.local_addr()?;
    drop(probe);
    (0..threads.max(1))
        .map(|_| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_port(true)?;
            socket.set_reuse_address(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(4096)?;
            Ok(socket.into())
        })
        .collect()
}

/// Asks every runtime to stop accepting and finish what it is doing.
/// Shutting the listening sockets down wakes each `accept` with an error.
pub struct Shutdown {
    triggered: AtomicBool,
    listeners: Mutex<Vec<RawFd>>,
}

impl Shutdown {
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown {
            triggered: AtomicBool::new(false),
            listeners: Mutex::new(Vec::new()),
        })
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }

    pub fn trigger(&self) {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        if self.triggered.swap(true, Ordering::AcqRel) {
            return;
        }
        for &fd in listeners.iter() {
            // SAFETY: fds stay registered only while their listener is open
            // (see `forget_listener`), and the lock is held here.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Read);
        }
    }

    fn register_listener(&self, fd: RawFd) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fd);
    }

    fn forget_listener(&self, fd: RawFd) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&f| f != fd);
    }
}

/// Starts one thread per listener, each with its own runtime, running
/// `serve(listener)` until it returns. Returns once every runtime is up (or
/// the first error), with the driver they run on.
pub fn spawn_workers<F, Fut>(
    name: &str,
    listeners: Vec<StdListener>,
    shutdown: &Arc<Shutdown>,
    serve: F,
) -> std::io::Result<(Vec<JoinHandle<()>>, DriverKind)>
where
    F: Fn(monoio::net::TcpListener) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let serve = Arc::new(serve);
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for (i, std_listener) in listeners.into_iter().enumerate() {
        let (serve, ready_tx, shutdown) = (serve.clone(), ready_tx.clone(), shutdown.clone());
        let handle = std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
                let (mut rt, kind) = match build() {
                    Ok(x) => x,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                rt.block_on(async move {
                    let fd = std_listener.as_raw_fd();
                    let listener = match monoio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => return drop(ready_tx.send(Err(e))),
                    };
                    shutdown.register_listener(fd);
                    let _ = ready_tx.send(Ok(kind));
                    serve(listener).await;
                    shutdown.forget_listener(fd);
                });
            })?;
        handles.push(handle);
    }
    drop(ready_tx);
    let mut kind = DriverKind::Epoll;
    for _ in 0..handles.len() {
        match ready_rx.recv() {
            Ok(Ok(k)) => kind = k,
            Ok(Err(e)) => {
                shutdown.trigger();
                return Err(e);
            }
            Err(_) => {
                shutdown.trigger();
                return Err(std::io::Error::other("a server thread died while starting"));
            }
        }
    }
    Ok((handles, kind))
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise; in colour
/// only when stderr is a terminal and `NO_COLOR` is not set.
/// Raises this process's soft limit of open descriptors to its hard limit,
/// as Go's runtime does: a server holds one per connection.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "cannot raise the limit of open files");
        }
    }
}

/// Keeps freed heap memory for reuse instead of handing it back to the
/// kernel at once. The servers allocate and free buffers of 256-512 KiB for
/// every large body; glibc maps those fresh (above 128 KiB) or trims them
/// away after the free (madvise), so every upload paid page faults and the
/// zeroing of its pages. What is kept is what was in use at the peak, plus
/// at most 64 MiB of free space at the top of each heap.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called at start-up,
    // before the servers' threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// Logs to stderr, `RUST_LOG` filtering (info by default): colour only on
/// a terminal and without `NO_COLOR`; with `json`, one object a line.
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if json {
        // One JSON object a line: time, level, fields, message, target.
        fmt.json().flatten_event(true).init();
    } else {
        fmt.with_ansi(colour).init();
    }
}

/// Waits for SIGINT or SIGTERM on a helper thread, then triggers `shutdown`.
pub fn on_signal(shutdown: Arc<Shutdown>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "shutting down");
                shutdown.trigger();
            }
        })?;
    Ok(())
}

/// Runs a future to completion on the calling thread, with no runtime:
/// for threads that wait on channels a runtime's tasks answer (the index
/// writer, a volume's walker threads).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
