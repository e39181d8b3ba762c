//! The command line, as clap parses it. Names and meanings here are a contract
//! (docs/DESIGN.md section 6): labs type them by hand and scripts call them.
//!
//! Layer ids, layer paths, modes and owners are kept as text here and validated by the
//! commands, so that a bad one gets the same one-line `error: ...` as any other failure.

use clap::{ArgGroup, Args, Parser, Subcommand};
use std::path::PathBuf;

/// The store used when neither `--root` nor `$LAYERLAB_ROOT` is given.
pub const DEFAULT_ROOT: &str = "layerlab-store";

/// The environment variable naming the store directory.
pub const ROOT_ENV: &str = "LAYERLAB_ROOT";

/// `layerlab [--root DIR] [--trace] <command>`
#[derive(Debug, Parser)]
#[command(
    name = "layerlab",
    version,
    about = "A laboratory for container image storage drivers, on plain files",
    after_help = "The store is --root DIR, else $LAYERLAB_ROOT, else ./layerlab-store."
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after the command name.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The store directory [default: $LAYERLAB_ROOT, else ./layerlab-store]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print each driver operation's steps and counts to stderr
    #[arg(long, global = true)]
    pub trace: bool,
}

impl Global {
    /// The store directory: `--root`, else `$LAYERLAB_ROOT` (if not empty), else
    /// `./layerlab-store`.
    pub fn store_root(&self) -> PathBuf {
        if let Some(r) = &self.root {
            return r.clone();
        }
        match std::env::var_os(ROOT_ENV) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => PathBuf::from(DEFAULT_ROOT),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store for one driver (the store directory is created; it must be empty)
    Init {
        /// The driver (see `layerlab drivers`)
        #[arg(long, value_name = "NAME")]
        driver: String,
        /// A driver option; repeat for several
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        opts: Vec<String>,
    },
    /// List the drivers: name, what it models, options with their defaults
    Drivers {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Create, commit, remove and list layers
    #[command(subcommand)]
    Layer(LayerCmd),
    /// Write a file: replace its content (creating it, mode 0644), or write at an offset
    #[command(group(ArgGroup::new("source").required(true).args(["data", "from"])))]
    #[command(group(ArgGroup::new("position").args(["offset", "append"])))]
    Write {
        /// The layer
        id: String,
        /// The file in the layer
        path: String,
        /// The bytes to write, verbatim (no newline is added)
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        data: Option<String>,
        /// Write the content of this host file
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// Write at this byte offset into the existing file, keeping the rest
        #[arg(long, value_name = "N")]
        offset: Option<u64>,
        /// Append to the existing file
        #[arg(long)]
        append: bool,
    },
    /// Print a file to stdout
    Cat {
        /// The layer
        id: String,
        /// The file in the layer
        path: String,
    },
    /// List a directory of a layer's merged view, with the layer providing each entry
    Ls {
        /// The layer
        id: String,
        /// The directory (or file) [default: /]
        path: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show an entry's attributes and the layer that provides it
    Stat {
        /// The layer
        id: String,
        /// The path in the layer
        path: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a file or symlink (with -r, a directory and everything under it)
    Rm {
        /// The layer
        id: String,
        /// The path in the layer
        path: String,
        /// Remove directories and their contents
        #[arg(short = 'r', long = "recursive")]
        recursive: bool,
    },
    /// Create a directory, mode 0755
    Mkdir {
        /// The layer
        id: String,
        /// The directory to create
        path: String,
        /// Create missing parents too; an existing directory is fine
        #[arg(short = 'p', long = "parents")]
        parents: bool,
    },
    /// Rename an entry (as rename(2): DST is the new name, and an existing file is replaced)
    Mv {
        /// The layer
        id: String,
        /// The entry to move
        src: String,
        /// Its new path
        dst: String,
    },
    /// Set a file's length, cutting it or extending it with zeros
    Truncate {
        /// The layer
        id: String,
        /// The file in the layer
        path: String,
        /// The new length: bytes, or a size such as 4KiB (powers of two) or 4KB (powers of
        /// ten)
        size: String,
    },
    /// Set permission bits, in octal (0644, 755, 4755 for setuid, 1777 for sticky)
    Chmod {
        /// The layer
        id: String,
        /// Numeric mode as chmod(1) takes it: octal, at most 07777 (644, 0644, 4755, 01705)
        mode: String,
        /// The path in the layer
        path: String,
    },
    /// Set an entry's mtime (now, or --mtime), creating an empty file where nothing is
    Touch {
        /// The layer
        id: String,
        /// The path in the layer (a symlink itself, never its target)
        path: String,
        /// Seconds since 1970, with a fraction to the nanosecond (1700000000.5)
        #[arg(long, value_name = "SECS[.FRAC]")]
        mtime: Option<String>,
        /// Do not create a missing file
        #[arg(short = 'c', long = "no-create")]
        no_create: bool,
    },
    /// Show extended attributes (all, or one with -n), as getfattr -d prints them
    Getfattr {
        /// The layer
        id: String,
        /// The path in the layer
        path: String,
        /// Only this attribute (user.*, trusted.*, security.*)
        #[arg(short = 'n', long = "name")]
        name: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Set (-n NAME -v VALUE) or remove (-x NAME) an extended attribute, as setfattr
    Setfattr {
        /// The layer
        id: String,
        /// The path in the layer
        path: String,
        /// The attribute to set
        #[arg(short = 'n', long = "name", conflicts_with = "remove")]
        name: Option<String>,
        /// Its value: text, or 0x and hex [default: empty]
        #[arg(short = 'v', long = "value", requires = "name")]
        value: Option<String>,
        /// The attribute to remove
        #[arg(short = 'x', long = "remove")]
        remove: Option<String>,
    },
    /// Serve a layer's merged view at DIR through FUSE (root); returns once mounted
    Mount {
        /// The layer (a committed layer mounts read-only)
        id: String,
        /// The mount directory (an existing directory)
        dir: PathBuf,
        /// Stay attached, print each operation with --trace, finish on Ctrl-C
        #[arg(long)]
        foreground: bool,
        /// Serve an active layer read-only
        #[arg(long)]
        read_only: bool,
        /// (internal) the background server started by `mount`
        #[arg(long, hide = true)]
        serve: bool,
    },
    /// Unmount DIR, wait for its server to finish, print the counts of the whole mount
    Umount {
        /// The mount directory
        dir: PathBuf,
    },
    /// Make a device node (c or b, with MAJOR MINOR) or a fifo (p), as mknod(1)
    Mknod {
        /// The layer
        id: String,
        /// The path in the layer
        path: String,
        /// c (character device), b (block device) or p (fifo)
        #[arg(value_name = "TYPE")]
        kind: String,
        /// MAJOR MINOR, for a device node
        numbers: Vec<u32>,
        /// Permission bits, in octal [default: 0644]
        #[arg(short = 'm', long = "mode")]
        mode: Option<String>,
    },
    /// Set numeric owner and group
    Chown {
        /// The layer
        id: String,
        /// Numeric owner and group, UID:GID
        #[arg(value_name = "UID:GID")]
        owner: String,
        /// The path in the layer (a symlink itself, never its target)
        path: String,
    },
    /// Make a hard link (with -s, a symbolic link) at LINKPATH
    Ln {
        /// The layer
        id: String,
        /// The existing file (with -s: the symlink's target, stored verbatim)
        target: String,
        /// The new link
        linkpath: String,
        /// Make a symbolic link
        #[arg(short = 's', long = "symbolic")]
        symbolic: bool,
    },
    /// Copy a host file or directory tree into a layer (like a Dockerfile COPY)
    Copy {
        /// The layer
        id: String,
        /// The host file or directory (symlinks on the host are copied, never followed)
        hostpath: PathBuf,
        /// Where in the layer (a file goes into DEST if DEST is a directory)
        dest: String,
    },
    /// Write a layer's merged view into a host directory (created if missing; must be
    /// empty), keeping hard links, holes, modes, owners and mtimes; or, with --tar, as one
    /// tar (as docker export)
    Export {
        /// The layer
        id: String,
        /// The host directory
        #[arg(required_unless_present = "tar", conflicts_with = "tar")]
        hostdir: Option<PathBuf>,
        /// Write the view as one tar to FILE (`-`: stdout; gzip if it ends in .gz)
        #[arg(long, value_name = "FILE")]
        tar: Option<PathBuf>,
    },
    /// The layer's changes against its parent, as `docker diff` prints them: A added,
    /// C changed, D deleted; a directory where an entry was added or deleted is changed
    /// too (with --tar, as an OCI layer tar)
    Diff {
        /// The layer
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Write the changes as an OCI layer tar to FILE (gzip if it ends in .gz)
        #[arg(long, value_name = "FILE")]
        tar: Option<PathBuf>,
        /// Sorted entries, zero timestamps, no owner names: the same changes give the same
        /// bytes on every driver (the default)
        #[arg(long, requires = "tar")]
        reproducible: bool,
        /// Keep the files' modification times in the tar (not reproducible)
        #[arg(long, requires = "tar", conflicts_with = "reproducible")]
        no_reproducible: bool,
    },
    /// Apply an OCI layer tar (plain, gzip or zstd) to an active layer, by the image-spec
    /// rules; a refused archive changes nothing
    Apply {
        /// The layer (active)
        id: String,
        /// The layer tar
        file: PathBuf,
        /// The size and entry limits.
        #[command(flatten)]
        limits: LimitArgs,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Import a `docker save` / `podman save` archive or an OCI image layout (directory
    /// or tar) as a chain of committed layers named by chain id
    Import {
        /// The archive or OCI layout directory
        archive: PathBuf,
        /// The image name to record [default: the archive's tag]
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The size and entry limits of each layer.
        #[command(flatten)]
        limits: LimitArgs,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Save an image of the store as an archive `podman load` / `docker load` accepts
    Save {
        /// The image (name or id)
        image: String,
        /// The archive to write
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// The archive format
        #[arg(long, value_name = "FORMAT", default_value = "docker-archive",
              value_parser = ["docker-archive", "oci-archive"])]
        format: String,
    },
    /// Build an image from a Containerfile, with the layer cache (as podman build);
    /// each built step shows what it cost the driver
    Build {
        /// The Containerfile [default: CONTEXT/Containerfile, else CONTEXT/Dockerfile]
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// The image name to record
        #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
        tag: String,
        /// Build this stage (and the stages it needs) instead of the last
        #[arg(long, value_name = "STAGE")]
        target: Option<String>,
        /// Build every step, using no cached layer
        #[arg(long)]
        no_cache: bool,
        /// A build argument (repeatable)
        #[arg(long = "build-arg", value_name = "K=V")]
        build_arg: Vec<String>,
        /// Print one JSON document (image and steps)
        #[arg(long)]
        json: bool,
        /// The build context directory
        context: PathBuf,
    },
    /// List imported images: name, top layer (a parent for container layers), layers
    Images {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// The steps that made an image, newest first, with what each added (docker history)
    History {
        /// The image (name or id)
        image: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
        /// Full layer ids, times and instructions
        #[arg(long)]
        no_trunc: bool,
    },
    /// Space taken by images, containers and build cache, shared layers counted once
    /// (docker system df)
    Df {
        /// Per image its shared and unique size, per layer the images using it
        #[arg(short = 'v', long)]
        verbose: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Analyze an image: per layer what it added, changed and removed; dive's efficiency
    /// and wasted bytes; the course's findings; per-driver cost; pull planning
    Analyze(AnalyzeArgs),
    /// Draw the layer tree: which images and containers share which layers (for one
    /// image, its stack up to the merged view)
    Graph {
        /// Only these images (name or id) and the layers above them
        images: Vec<String>,
        /// As a mermaid flowchart
        #[arg(long)]
        mermaid: bool,
        /// As a Graphviz digraph
        #[arg(long, conflicts_with = "mermaid")]
        dot: bool,
    },
    /// Space and inodes the layer holds exclusively
    Usage {
        /// The layer
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Check the store (layer table, each layer's data, the driver's structures, every file)
    /// and, with --repair, fix what can be fixed without losing committed data. Exit code
    /// as fsck(8): 0 clean, 1 repaired, 4 left uncorrected, 8 fsck could not run
    Fsck {
        /// Fix what can be fixed without losing committed data; list what was dropped
        #[arg(long)]
        repair: bool,
        /// Print one JSON document
        #[arg(long)]
        json: bool,
    },
    /// Driver facts: name, options, where its files are
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Run an experiment (a TOML file, see configs/README.md) and write its results
    Run {
        /// The experiment file
        config: PathBuf,
        /// Where to write the results [default: reports/EXPERIMENT/]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Shrink every workload (sizes up to 1 MiB, depths up to 16, one repetition)
        #[arg(long)]
        quick: bool,
        /// No progress bar (it is only drawn when stderr is a terminal anyway)
        #[arg(long)]
        no_progress: bool,
        /// Print the experiment's points (a sweep expanded) and their estimated cost; run
        /// nothing
        #[arg(long, conflicts_with_all = ["shard", "out", "no_progress"])]
        plan: bool,
        /// Run only shard K of N (K from 0, as $SLURM_ARRAY_TASK_ID), balanced by the
        /// estimate; writes a manifest for `merge` beside the results (needs --out)
        #[arg(long, value_name = "K/N", requires = "out")]
        shard: Option<String>,
    },
    /// Merge the shard directories of one experiment and write its results and report
    Merge {
        /// The shard directories (`run --shard K/N --out DIR`), every one of them
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Where to write the merged results and the report
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Merge the shards that are there, and say which are missing
        #[arg(long)]
        partial: bool,
    },
    /// Write Slurm batch scripts for a sharded run: a job array (one shard per task) and a
    /// merge job after it; submit them with --submit
    Slurm {
        /// The experiment file
        config: PathBuf,
        /// The options.
        #[command(flatten)]
        opts: SlurmArgs,
    },
    /// Run an experiment (the standard one without --config) and write its report:
    /// report.md, report.html, plots (SVG and PNG), and the results (CSV, JSON)
    Report {
        /// The experiment file [default: the standard experiment, built in]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Where to write the report [default: reports/EXPERIMENT/]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Shrink every workload (sizes up to 1 MiB, depths up to 16, one repetition)
        #[arg(long)]
        quick: bool,
    },
    /// Measure this machine's primitive costs (probes cold and warm, bandwidths, metadata
    /// writes, fsyncs, read calls, btrfs commits and log commits on a loop-mounted btrfs)
    /// and write them as a device profile
    Calibrate {
        /// Where to write the profile [default: configs/profiles/calibrated.toml]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The directory to measure in [default: the current directory]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Bytes of the bandwidth test file [default: 256MiB]
        #[arg(long, value_name = "SIZE")]
        size: Option<String>,
    },
}

/// `layerlab layer ...`
#[derive(Debug, Subcommand)]
pub enum LayerCmd {
    /// Create an active layer, empty or on a committed parent
    Create {
        /// The new layer's id (letters, digits, `.`, `_`, `-`, `:`)
        id: String,
        /// The parent layer (must be committed)
        #[arg(long, value_name = "ID")]
        parent: Option<String>,
    },
    /// Make a layer read-only, so that it can have children
    Commit {
        /// The layer
        id: String,
    },
    /// Remove a layer that has no children
    Rm {
        /// The layer
        id: String,
    },
    /// List the layers: id, parent, state, depth
    Ls {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// `layerlab analyze IMAGE ...`
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The image (name or id)
    pub image: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Check dive's CI rules and exit with status 1 if one fails (defaults: lowest
    /// efficiency 0.9, highest user wasted percent 0.1, wasted bytes unchecked)
    #[arg(long)]
    pub ci: bool,
    /// CI: the lowest efficiency allowed, 0 to 1
    #[arg(long, value_name = "F", requires = "ci")]
    pub lowest_efficiency: Option<f64>,
    /// CI: the most wasted bytes allowed (e.g. 20MB)
    #[arg(long, value_name = "N", requires = "ci")]
    pub highest_wasted_bytes: Option<String>,
    /// CI: the highest ratio of wasted bytes to the content of the layers above the
    /// base, 0 to 1
    #[arg(long, value_name = "F", requires = "ci")]
    pub highest_user_wasted_percent: Option<f64>,
    /// Measure the image on these drivers (`all`, or names separated by commas) in
    /// scratch stores: space, container creation, copy-up of the ten largest files
    #[arg(long, value_name = "DRIVERS")]
    pub drivers: Option<String>,
    /// Plan a pull of IMAGE given these images are present (by diff id)
    #[arg(long, value_name = "IMAGE", num_args = 1..)]
    pub have: Vec<String>,
}

/// The limits of `apply` and `import`: a layer tar past them is refused.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Refuse a layer tar that expands past this size [default: 8GiB]
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Refuse a layer tar with more entries [default: 1000000]
    #[arg(long, value_name = "N")]
    pub max_entries: Option<u64>,
}

/// The options of `layerlab slurm CONFIG`.
#[derive(Debug, Clone, Args)]
pub struct SlurmArgs {
    /// The number of shards (array tasks)
    #[arg(long, value_name = "N")]
    pub shards: usize,
    /// The sweep directory: scripts, logs/, shard-K/, report/ [default: reports/EXPERIMENT-sweep/]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The Slurm partition
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// The time limit of each job (Slurm's format: 30, 1:30:00, 2-00:00:00)
    #[arg(long, value_name = "T")]
    pub time: Option<String>,
    /// Run every shard with --quick
    #[arg(long)]
    pub quick: bool,
    /// Submit the array and the merge job (sbatch) instead of only writing the scripts
    #[arg(long)]
    pub submit: bool,
}
