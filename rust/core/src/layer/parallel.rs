//! Several layers unpacked at once, one thread per core: the layers of a load are independent
//! until they are stacked, and each is as much CPU (hash, decompress) as I/O. Hardlinks to
//! files of earlier layers are made after, in the jobs' order: a layer below may be a sibling.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use super::lower_links::link_from_lowers;
use super::unpack::{unpack_keeping, Unpacked};
use crate::error::Result;

pub struct Job {
    pub input: Box<dyn Read + Send>,
    pub dest: PathBuf,
    pub blob: Option<Keep>,
    /// The directories of the layers below, top-most first; those of other jobs included,
    /// which come earlier in the batch.
    pub lowers: Vec<PathBuf>,
}

/// What an unpack keeps of its input, beside the files.
pub enum Keep {
    /// The uncompressed tar: a layer's blob, named by its diff id.
    Tar(PathBuf),
    /// The input as it came (compressed or not): a pulled layer's blob, named by the digest
    /// the registry gave it, so that it can be sent on again as it is.
    Input(PathBuf),
}

/// Each job's result, in the jobs' order; a failed job does not stop the others (the caller
/// removes what they left, as for a single layer).
pub fn unpack_all(jobs: Vec<Job>) -> Vec<Result<Unpacked>> {
    let n = jobs.len();
    let places: Vec<(PathBuf, Vec<PathBuf>)> = jobs.iter().map(|j| (j.dest.clone(), j.lowers.clone())).collect();
    let workers = std::thread::available_parallelism().map_or(1, |c| c.get()).clamp(1, n.max(1));
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let results: Mutex<Vec<Option<Result<Unpacked>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((i, job)) = next else { break };
                let r = unpack_keeping(job.input, &job.dest, job.blob.as_ref());
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results
        .into_iter()
        .zip(places)
        .map(|(r, (dest, lowers))| {
            let u = r.expect("every job ran")?;
            if !u.lower_links.is_empty() {
                link_from_lowers(&dest, &u.lower_links, &lowers)?;
            }
            Ok(u)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testtar::{raw_tar, tar_of};
    use super::*;

    #[test]
    fn layers_unpack_side_by_side_and_fail_alone() {
        let t = tempfile::tempdir().unwrap();
        let jobs: Vec<Job> = ["a", "../bad", "c"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let dest = t.path().join(format!("l{i}"));
                std::fs::create_dir(&dest).unwrap();
                let data = if name.starts_with("..") { raw_tar(name) } else { tar_of(&[(name, b"hi")]) };
                Job { input: Box::new(std::io::Cursor::new(data)), dest, blob: None, lowers: Vec::new() }
            })
            .collect();
        let got = unpack_all(jobs);
        assert!(got[0].is_ok() && got[2].is_ok());
        assert!(got[1].as_ref().err().unwrap().to_string().contains("unsafe path"));
        assert_eq!(std::fs::read(t.path().join("l2/c")).unwrap(), b"hi");
    }
}
