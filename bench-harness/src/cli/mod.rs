//! The `layerlab` command line: the verbs of docs/DESIGN.md section 6.
//!
//! - [`args`]: the clap definition (names and meanings are a contract);
//! - [`values`]: validation of ids, paths, modes, owners, options;
//! - [`session`]: the open store and `--trace`;
//! - [`store_cmds`]: `init`, `drivers`, `layer ...`, `diff`, `usage`, `status`;
//! - [`file_cmds`]: `write`, `cat`, `ls`, `stat`, `rm`, `mkdir`, `mv`, `truncate`, `chmod`,
//!   `chown`, `ln`;
//! - [`attr_cmds`]: `touch`, `getfattr`, `setfattr`, `mknod` (times, xattrs, devices);
//! - [`fsck_cmd`]: `fsck`, the check and repair of a store;
//! - [`hostcopy`]: `copy` and `export`;
//! - [`mount_cmds`]: `mount` and `umount` (a layer as a live filesystem, FUSE);
//! - [`oci_cmds`]: `diff --tar`, `apply`, `import`, `images` (OCI layer tars and images);
//! - [`save_cmd`]: `save` (an image as a docker-archive or oci-archive);
//! - [`build_cmd`]: `build` (an image from a Containerfile, with the layer cache);
//! - [`inspect_cmds`]: `history`, `df`, `analyze`, `graph` (reading images);
//! - [`output`]: tables, JSON, modes, trace lines;
//! - [`run_cmd`]: `run CONFIG`, an experiment of the harness.
//! - [`report_cmd`]: `report`, an experiment and its report.
//! - [`sweep_cmds`]: `run --plan`, `run --shard K/N`, `merge`, `slurm` (sweeps on a cluster).
//!
//! Drivers are only ever named through `layerlab_drivers::DRIVERS` and the store's own
//! `store.json`; every call is statically dispatched through `AnyDriver`.

pub mod args;
pub mod attr_cmds;
pub mod build_cmd;
pub mod calibrate_cmd;
pub mod file_cmds;
pub mod fsck_cmd;
pub mod hostcopy;
pub mod inspect_cmds;
pub mod mount_cmds;
pub mod oci_cmds;
pub mod output;
pub mod report_cmd;
pub mod run_cmd;
pub mod save_cmd;
pub mod session;
pub mod store_cmds;
pub mod sweep_cmds;
pub mod values;

use args::{Cli, Command};
use file_cmds::Position;
use std::io::Write;

/// Runs one parsed command line, printing its results to stdout; returns the exit code
/// (0, or what `fsck` found).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let mut code = 0;
    let g = &cli.global;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Init { driver, opts } => store_cmds::init(&mut out, g, &driver, &opts),
        Command::Drivers { json } => store_cmds::drivers(&mut out, json),
        Command::Layer(cmd) => store_cmds::layer(&mut out, g, cmd),
        Command::Write {
            id,
            path,
            data,
            from,
            offset,
            append,
        } => {
            let pos = match (offset, append) {
                (Some(n), _) => Position::Offset(n),
                (None, true) => Position::Append,
                (None, false) => Position::Replace,
            };
            file_cmds::write(g, &id, &path, data, from, pos)
        }
        Command::Mount {
            id,
            dir,
            foreground,
            read_only,
            serve,
        } => mount_cmds::mount(
            &mut out,
            g,
            &id,
            &dir,
            mount_cmds::How {
                foreground,
                read_only,
                serve,
            },
        ),
        Command::Umount { dir } => mount_cmds::umount(&mut out, g, &dir),
        Command::Cat { id, path } => file_cmds::cat(&mut out, g, &id, &path),
        Command::Ls { id, path, json } => file_cmds::ls(&mut out, g, &id, path.as_deref(), json),
        Command::Stat { id, path, json } => file_cmds::stat(&mut out, g, &id, &path, json),
        Command::Rm {
            id,
            path,
            recursive,
        } => file_cmds::rm(g, &id, &path, recursive),
        Command::Mkdir { id, path, parents } => file_cmds::mkdir(g, &id, &path, parents),
        Command::Mv { id, src, dst } => file_cmds::mv(g, &id, &src, &dst),
        Command::Truncate { id, path, size } => file_cmds::truncate(g, &id, &path, &size),
        Command::Chmod { id, mode, path } => file_cmds::chmod(g, &id, &mode, &path),
        Command::Chown { id, owner, path } => file_cmds::chown(g, &id, &owner, &path),
        Command::Touch {
            id,
            path,
            mtime,
            no_create,
        } => attr_cmds::touch(g, &id, &path, mtime.as_deref(), no_create),
        Command::Getfattr {
            id,
            path,
            name,
            json,
        } => attr_cmds::getfattr(&mut out, g, &id, &path, name.as_deref(), json),
        Command::Setfattr {
            id,
            path,
            name,
            value,
            remove,
        } => attr_cmds::setfattr(
            g,
            &id,
            &path,
            name.as_deref(),
            value.as_deref(),
            remove.as_deref(),
        ),
        Command::Mknod {
            id,
            path,
            kind,
            numbers,
            mode,
        } => attr_cmds::mknod(g, &id, &path, &kind, &numbers, mode.as_deref()),
        Command::Ln {
            id,
            target,
            linkpath,
            symbolic,
        } => file_cmds::ln(g, &id, &target, &linkpath, symbolic),
        Command::Copy { id, hostpath, dest } => hostcopy::copy(g, &id, &hostpath, &dest),
        Command::Export {
            id,
            tar: Some(file),
            ..
        } => oci_cmds::export_tar(&mut out, g, &id, &file),
        Command::Export {
            id,
            hostdir: Some(dir),
            ..
        } => hostcopy::export(g, &id, &dir),
        Command::Export { .. } => Err(anyhow::anyhow!("export: give HOSTDIR or --tar FILE")),
        Command::Diff {
            id,
            json,
            tar: Some(file),
            no_reproducible,
            ..
        } => oci_cmds::diff_tar(&mut out, g, &id, &file, !no_reproducible, json),
        Command::Diff { id, json, .. } => store_cmds::diff(&mut out, g, &id, json),
        Command::Apply {
            id,
            file,
            limits,
            json,
        } => oci_cmds::apply(&mut out, g, &id, &file, &limits, json),
        Command::Import {
            archive,
            name,
            limits,
            json,
        } => oci_cmds::import(&mut out, g, &archive, name, &limits, json),
        Command::Save {
            image,
            output,
            format,
        } => save_cmd::save(&mut out, g, &image, &output, &format),
        Command::Images { json } => oci_cmds::images(&mut out, g, json),
        Command::Build {
            file,
            tag,
            target,
            no_cache,
            build_arg,
            json,
            context,
        } => build_cmd::build(
            &mut out,
            g,
            build_cmd::BuildArgs {
                file,
                tag,
                target,
                no_cache,
                build_args: build_arg,
                json,
                context,
            },
        ),
        Command::History {
            image,
            json,
            no_trunc,
        } => inspect_cmds::history(&mut out, g, &image, json, no_trunc),
        Command::Df { verbose, json } => inspect_cmds::df(&mut out, g, verbose, json),
        Command::Analyze(a) => inspect_cmds::analyze(&mut out, g, &a),
        Command::Graph {
            images,
            mermaid,
            dot,
        } => inspect_cmds::graph(&mut out, g, &images, mermaid, dot),
        Command::Usage { id, json } => store_cmds::usage(&mut out, g, &id, json),
        Command::Status { json } => store_cmds::status(&mut out, g, json),
        Command::Fsck { repair, json } => {
            fsck_cmd::fsck(&mut out, g, repair, json).map(|c| code = c)
        }
        Command::Run {
            config,
            plan: true,
            quick,
            ..
        } => sweep_cmds::plan(&mut out, &config, quick),
        Command::Run {
            config,
            out: Some(dir),
            quick,
            no_progress,
            shard: Some(shard),
            ..
        } => sweep_cmds::shard(&mut out, &config, &shard, dir, quick, !no_progress),
        Command::Run {
            config,
            out: dir,
            quick,
            no_progress,
            ..
        } => run_cmd::run(&mut out, &config, dir, quick, !no_progress),
        Command::Merge {
            dirs,
            out: dir,
            partial,
        } => sweep_cmds::merge(&mut out, &dirs, &dir, partial),
        Command::Slurm { config, opts } => sweep_cmds::slurm(&mut out, &config, &opts),
        Command::Report {
            config,
            out: dir,
            quick,
        } => report_cmd::report(&mut out, config.as_deref(), dir, quick),
        Command::Calibrate {
            out: file,
            dir,
            size,
        } => calibrate_cmd::calibrate(&mut out, file, dir, size.as_deref()),
    }?;
    out.flush()?;
    Ok(code)
}

/// The one line printed after `error: `: the error and its causes, each said once.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if msg.is_empty() || line.contains(&msg) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&msg);
    }
    line.replace(['\n', '\r'], " ")
}

/// True when the error is stdout closing under us (`layerlab cat ... | head`): not a
/// failure worth a message.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
