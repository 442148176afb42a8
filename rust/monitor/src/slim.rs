//! The monitor lives as long as its container, so what it keeps in memory is paid once per
//! container. Starting one touches much code (the spec's parser, the plan) that holding it
//! never runs again: dropping our mappings of code pages (clean, read from the binary and
//! libraries, so simply faulted back from the page cache if ever needed) leaves only what the
//! hold loop uses counted against the monitor.

pub fn drop_code_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
        let path = f.nth(3).unwrap_or("");
        // Only executable, never-written file mappings: [vdso] and anonymous ones are not ours
        // to drop, and writable or relocated (RELRO) pages hold state.
        if perms != "r-xp" || !path.starts_with('/') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else { continue };
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
    // Heap freed since the start (the parsed config, the plan) goes back to the kernel.
    unsafe { libc::malloc_trim(0) };
}
