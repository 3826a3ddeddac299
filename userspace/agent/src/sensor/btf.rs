//! Just enough of a BTF reader to find where the running kernel keeps a struct's fields.
//!
//! The probes read `task_struct` and `cred` fields through offsets that the agent resolves
//! here, from `/sys/kernel/btf/vmlinux`, at load time: the same struct layout knowledge CO-RE
//! relocations give C programs, for the few fields the probes need.

use std::collections::HashMap;

/// Why the kernel's type information could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("BTF data is truncated or malformed: {0}")]
    Malformed(&'static str),
    #[error("BTF has no struct `{0}`")]
    NoStruct(String),
    #[error("struct `{strukt}` has no field `{field}` in this kernel's BTF")]
    NoField { strukt: String, field: String },
}

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone)]
struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
}

#[derive(Debug, Clone)]
struct Composite {
    name_off: u32,
    members: Vec<Member>,
}

/// The structs and unions of a BTF blob, by type id.
pub struct Btf {
    strings: Vec<u8>,
    composites: HashMap<u32, Composite>,
    by_name: HashMap<String, u32>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, Error> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(Error::Malformed("type section cut inside a record"))
}

impl Btf {
    pub fn from_sys_fs() -> Result<Self, crate::sensor::Error> {
        let path = "/sys/kernel/btf/vmlinux";
        let data = std::fs::read(path).map_err(|e| crate::sensor::Error::NoBtf(path, e))?;
        Btf::parse(&data).map_err(crate::sensor::Error::BadBtf)
    }

    /// Parses a little-endian BTF blob. Never panics, whatever the bytes.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        if data.len() < 24 {
            return Err(Error::Malformed("shorter than the header"));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != MAGIC {
            return Err(Error::Malformed("bad magic (not little-endian BTF)"));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let type_off = u32_at(data, 8)? as usize;
        let type_len = u32_at(data, 12)? as usize;
        let str_off = u32_at(data, 16)? as usize;
        let str_len = u32_at(data, 20)? as usize;
        let section = |off: usize, len: usize| {
            hdr_len
                .checked_add(off)
                .and_then(|s| s.checked_add(len).map(|e| (s, e)))
                .and_then(|(s, e)| data.get(s..e))
        };
        let types =
            section(type_off, type_len).ok_or(Error::Malformed("type section out of bounds"))?;
        let strings = section(str_off, str_len)
            .ok_or(Error::Malformed("string section out of bounds"))?
            .to_vec();

        let mut composites = HashMap::new();
        let mut by_name = HashMap::new();
        let mut at = 0usize;
        let mut id = 1u32;
        while at < types.len() {
            let name_off = u32_at(types, at)?;
            let info = u32_at(types, at + 4)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kflag = info >> 31 == 1;
            at += 12;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    let mut members = Vec::with_capacity(vlen);
                    for i in 0..vlen {
                        let m = at + 12 * i;
                        let off = u32_at(types, m + 8)?;
                        members.push(Member {
                            name_off: u32_at(types, m)?,
                            type_id: u32_at(types, m + 4)?,
                            bit_offset: if kflag { off & 0x00ff_ffff } else { off },
                        });
                    }
                    let c = Composite { name_off, members };
                    if kind == KIND_STRUCT && name_off != 0 {
                        let name = str_at(&strings, name_off)?;
                        by_name.entry(name.to_owned()).or_insert(id);
                    }
                    composites.insert(id, c);
                    12 * vlen
                }
                KIND_ENUM => 8 * vlen,
                KIND_FUNC_PROTO => 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                0..=19 => 0,
                _ => return Err(Error::Malformed("unknown type kind")),
            };
            at = at
                .checked_add(extra)
                .ok_or(Error::Malformed("record length overflows"))?;
            if at > types.len() {
                return Err(Error::Malformed("type section cut inside a record"));
            }
            id = id
                .checked_add(1)
                .ok_or(Error::Malformed("too many types"))?;
        }
        Ok(Btf {
            strings,
            composites,
            by_name,
        })
    }

    /// Byte offset of `field` in `struct strukt`, looking through anonymous structs and unions.
    pub fn field_offset(&self, strukt: &str, field: &str) -> Result<u32, Error> {
        let id = *self
            .by_name
            .get(strukt)
            .ok_or_else(|| Error::NoStruct(strukt.to_owned()))?;
        self.find(id, field, 0, 0)
            .map(|bits| bits / 8)
            .ok_or_else(|| Error::NoField {
                strukt: strukt.to_owned(),
                field: field.to_owned(),
            })
    }

    fn find(&self, id: u32, field: &str, base_bits: u32, depth: u32) -> Option<u32> {
        if depth > 8 {
            return None;
        }
        let c = self.composites.get(&id)?;
        let _ = c.name_off;
        for m in &c.members {
            if m.name_off != 0 {
                if str_at(&self.strings, m.name_off).ok()? == field {
                    return Some(base_bits + m.bit_offset);
                }
            } else if let Some(found) =
                self.find(m.type_id, field, base_bits + m.bit_offset, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }
}

fn str_at(strings: &[u8], off: u32) -> Result<&str, Error> {
    let tail = strings
        .get(off as usize..)
        .ok_or(Error::Malformed("string offset out of bounds"))?;
    let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
    std::str::from_utf8(&tail[..end]).map_err(|_| Error::Malformed("string is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tiny BTF blob: `struct inner { int a; }` and
    /// `struct task { int x; union { struct inner in; }; int tgid; }`.
    fn fixture() -> Vec<u8> {
        let strings = b"\0int\0inner\0a\0task\0x\0in\0tgid\0".to_vec();
        let s = |name: &str| {
            let needle = format!("\0{name}\0");
            (strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap()
                + 1) as u32
        };
        let mut t = Vec::new();
        let mut push = |v: &[u32]| v.iter().for_each(|x| t.extend_from_slice(&x.to_le_bytes()));
        // 1: int
        push(&[s("int"), KIND_INT << 24, 4, 32]);
        // 2: struct inner { a @0 }
        push(&[s("inner"), KIND_STRUCT << 24 | 1, 4, s("a"), 1, 0]);
        // 3: anonymous union { in: inner @0 }
        push(&[0, KIND_UNION << 24 | 1, 4, s("in"), 2, 0]);
        // 4: struct task { x @0, <anon union> @32 bits, tgid @64 bits }
        push(&[
            s("task"),
            KIND_STRUCT << 24 | 3,
            12,
            s("x"),
            1,
            0,
            0,
            3,
            32,
            s("tgid"),
            1,
            64,
        ]);
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn finds_direct_and_nested_fields() {
        let btf = Btf::parse(&fixture()).unwrap();
        assert_eq!(btf.field_offset("task", "x").unwrap(), 0);
        assert_eq!(btf.field_offset("task", "tgid").unwrap(), 8);
        assert_eq!(btf.field_offset("task", "in").unwrap(), 4);
        assert!(matches!(
            btf.field_offset("task", "nope"),
            Err(Error::NoField { .. })
        ));
        assert!(matches!(
            btf.field_offset("cred", "euid"),
            Err(Error::NoStruct(_))
        ));
    }

    #[test]
    fn truncated_blobs_are_errors() {
        let blob = fixture();
        for len in 0..blob.len() {
            assert!(Btf::parse(&blob[..len]).is_err(), "length {len} accepted");
        }
    }

    #[test]
    fn running_kernel_has_the_fields_the_probes_need() {
        let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            panic!(
                "this kernel exposes no BTF at /sys/kernel/btf/vmlinux: the sensor cannot run here"
            );
        };
        let btf = Btf::parse(&data).unwrap();
        for f in ["real_parent", "tgid", "pid", "cred", "exit_code"] {
            assert!(btf.field_offset("task_struct", f).unwrap() > 0, "{f}");
        }
        btf.field_offset("cred", "euid").unwrap();
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Btf::parse(&bytes);
        }

        #[test]
        fn corrupted_fixture_never_panics(idx in 0usize..200, byte in any::<u8>()) {
            let mut blob = fixture();
            let i = idx % blob.len();
            blob[i] = byte;
            if let Ok(btf) = Btf::parse(&blob) {
                let _ = btf.field_offset("task", "tgid");
            }
        }
    }
}
