//! Out of memory. On stable Rust a failed allocation prints "memory allocation of N bytes
//! failed" and aborts, running no panic hook: in the browser that line went to the alternate
//! screen and the terminal stayed raw; `dtui scan` ended "Aborted (core dumped)". The binary's
//! allocator (`Allocator`, installed in `main.rs`) is the system's, except that a failure ends
//! the process itself: the terminal put back (`restore_fatal`), one line on stderr
//! ("dtui: out of memory (allocating N bytes)"), exit status 1 (an error: nothing useful was
//! done), no core dump of a process that filled the memory.
//!
//! The cost is that nothing can recover from a failed allocation (`try_reserve`): dtui never
//! relies on that (its large memory is the mapped arena, whose failures are errors).
//!
//! `main` also fixes malloc's mmap threshold (`fixed_mmap_threshold`), so that large blocks
//! freed go back to the kernel.

use std::alloc::{GlobalAlloc, Layout, System};

use crate::ui::terminal::{restore_fatal, write_all_raw};

/// The system allocator; a failure ends the process with one clear line (see the module).
pub struct Allocator;

// SAFETY: every call is passed to `System` unchanged; a null result never returns.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        checked(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        checked(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        checked(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn checked(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() {
        out_of_memory(size);
    }
    ptr
}

/// Ends the process after a failed allocation of `size` bytes. Allocates nothing and takes no
/// lock (another thread may hold the stdout lock, or the failure may be in the middle of
/// anything): the terminal back, the line written with write(2), then `_exit`.
#[cold]
pub fn out_of_memory(size: usize) -> ! {
    restore_fatal();
    let mut line = [0u8; 80];
    let len = message(size, &mut line);
    write_all_raw(libc::STDERR_FILENO, &line[..len]);
    // SAFETY: _exit ends the process at once; nothing of ours runs after it.
    unsafe { libc::_exit(1) }
}

/// "dtui: out of memory (allocating N bytes)\n" into `buf`, without allocating; its length.
fn message(size: usize, buf: &mut [u8; 80]) -> usize {
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(b"dtui: out of memory (allocating ");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = size;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&digits[at..]);
    put(b" bytes)\n");
    len
}

/// Keeps glibc's malloc from raising its mmap threshold: by default, freeing a large block
/// (a wide directory's listing, 128 KiB and more) raises the threshold to its size, so the
/// next large blocks come from the heap and stay resident after they are freed, fragmenting
/// it (1 MiB of a 500,000-entry scan's peak RSS). A fixed threshold gives every large block
/// back at once; what it costs is an mmap and an munmap per wide directory.
pub fn fixed_mmap_threshold() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a malloc tunable; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_size_that_failed() {
        let mut buf = [0u8; 80];
        for (size, want) in [
            (0, "dtui: out of memory (allocating 0 bytes)\n"),
            (262_144, "dtui: out of memory (allocating 262144 bytes)\n"),
            (
                usize::MAX,
                "dtui: out of memory (allocating 18446744073709551615 bytes)\n",
            ),
        ] {
            let len = message(size, &mut buf);
            assert_eq!(std::str::from_utf8(&buf[..len]), Ok(want));
        }
    }
}
