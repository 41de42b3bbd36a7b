//! Finding separate debug files: by build id under each debug directory, and
//! by `.gnu_debuglink` next to the binary, in `.debug/`, and under each debug
//! directory (the GDB search order).

use std::path::{Path, PathBuf};

/// `DIR/.build-id/xx/rest.debug` for each debug directory.
pub fn build_id_paths(build_id: &[u8], debug_dirs: &[String]) -> Vec<PathBuf> {
    build_id_stems(build_id, debug_dirs)
        .map(|stem| PathBuf::from(format!("{stem}.debug")))
        .collect()
}

/// Full binaries kept by build id: `DIR/.build-id/xx/rest` (Fedora links it
/// to the installed binary) and `DIR/.build-id/xx/rest/elf` (perf's cache).
pub fn build_id_binary_paths(build_id: &[u8], debug_dirs: &[String]) -> Vec<PathBuf> {
    build_id_stems(build_id, debug_dirs)
        .flat_map(|stem| [PathBuf::from(format!("{stem}/elf")), PathBuf::from(stem)])
        .collect()
}

fn build_id_stems<'a>(
    build_id: &[u8],
    debug_dirs: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    let split = build_id
        .split_first()
        .map(|(first, rest)| (format!("{first:02x}"), hex(rest)));
    debug_dirs.iter().filter_map(move |dir| {
        let (first, rest) = split.as_ref()?;
        Some(format!("{dir}/.build-id/{first}/{rest}"))
    })
}

/// Where a `.gnu_debuglink` name may point, for a binary at `binary`.
pub fn debuglink_paths(binary: &Path, link: &str, debug_dirs: &[String]) -> Vec<PathBuf> {
    let dir = binary.parent().unwrap_or(Path::new("/"));
    let mut paths = vec![dir.join(link), dir.join(".debug").join(link)];
    for debug_dir in debug_dirs {
        // `/usr/lib/debug` + `/usr/bin` + `app.debug`
        let mut path = PathBuf::from(debug_dir);
        path.push(dir.strip_prefix("/").unwrap_or(dir));
        path.push(link);
        paths.push(path);
    }
    // A debuglink naming the binary itself would only find the stripped file.
    paths.retain(|p| p != binary);
    paths
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// CRC-32 (IEEE, as zlib and `.gnu_debuglink` use), slice-by-8 since debug
/// files run to hundreds of megabytes.
pub fn crc32(data: &[u8]) -> u32 {
    let tables = crc_tables();
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let lo = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ crc;
        let hi = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = tables[7][(lo & 0xff) as usize]
            ^ tables[6][((lo >> 8) & 0xff) as usize]
            ^ tables[5][((lo >> 16) & 0xff) as usize]
            ^ tables[4][(lo >> 24) as usize]
            ^ tables[3][(hi & 0xff) as usize]
            ^ tables[2][((hi >> 8) & 0xff) as usize]
            ^ tables[1][((hi >> 16) & 0xff) as usize]
            ^ tables[0][(hi >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = tables[0][((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn crc_tables() -> &'static [[u32; 256]; 8] {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut tables = [[0u32; 256]; 8];
        for (i, entry) in tables[0].iter_mut().enumerate() {
            let mut crc = i as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
            *entry = crc;
        }
        for i in 0..256 {
            for t in 1..8 {
                let prev = tables[t - 1][i];
                tables[t][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            }
        }
        tables
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let bytewise = long.iter().fold(!0u32, |crc, &b| {
            crc_tables()[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
        });
        assert_eq!(crc32(&long), !bytewise);
    }

    #[test]
    fn build_id_layout() {
        let paths = build_id_paths(&[0xab, 0xcd, 0xef], &["/usr/lib/debug".into()]);
        assert_eq!(
            paths,
            [PathBuf::from("/usr/lib/debug/.build-id/ab/cdef.debug")]
        );
        assert!(build_id_paths(&[], &["/d".into()]).is_empty());
        let binaries = build_id_binary_paths(&[0xab, 0xcd], &["/d".into()]);
        assert_eq!(
            binaries,
            [
                PathBuf::from("/d/.build-id/ab/cd/elf"),
                PathBuf::from("/d/.build-id/ab/cd")
            ]
        );
    }

    #[test]
    fn debuglink_search_order() {
        let paths = debuglink_paths(
            Path::new("/usr/bin/app"),
            "app.debug",
            &["/usr/lib/debug".into()],
        );
        assert_eq!(
            paths,
            [
                PathBuf::from("/usr/bin/app.debug"),
                PathBuf::from("/usr/bin/.debug/app.debug"),
                PathBuf::from("/usr/lib/debug/usr/bin/app.debug"),
            ]
        );
    }
}
