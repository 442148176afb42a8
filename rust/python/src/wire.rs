//! msgpack to and from plain Python data (None, bool, int, float, str, bytes, list, tuple,
//! dict), as the `msgpack` package's `packb` / `unpackb` do with their defaults: str as str and
//! bytes as bin, the smallest encoding of each number, floats as float64, map keys str or bytes
//! on the way in. Here so that the run path need not import that package (and the `datetime`
//! and `collections` it pulls in): pyc's records, the run, exec and monitor configs, the image
//! cache, all go through these two functions.
//!
//! `unpackb` reads what another process wrote (a record in pyc.db, a monitor's state file): a
//! malformed, truncated or hostile input is a ValueError, never a crash; nesting is bounded and
//! no length is trusted beyond the bytes that are there.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rmp::encode;
use rmp::Marker;

/// Deeper than any structure pyc writes; bounds the recursion on hostile input.
const MAX_DEPTH: usize = 256;

/// `obj` as msgpack bytes.
#[pyfunction]
pub fn packb<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(256);
    pack(obj, &mut out, 0)?;
    Ok(PyBytes::new(py, &out))
}

fn too_long(what: &str) -> PyErr {
    PyValueError::new_err(format!("{what} too long for msgpack"))
}

fn len32(n: usize, what: &str) -> PyResult<u32> {
    u32::try_from(n).map_err(|_| too_long(what))
}

fn pack(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("msgpack: nested too deep (a cycle?)"));
    }
    // Writing into a Vec cannot fail: the results below carry no error worth reading.
    if obj.is_none() {
        let _ = encode::write_nil(out);
    } else if let Ok(b) = obj.cast::<PyBool>() {
        let _ = encode::write_bool(out, b.is_true());
    } else if obj.is_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            let _ = encode::write_sint(out, v);
        } else {
            let v: u64 = obj.extract().map_err(|_| PyValueError::new_err("msgpack: integer out of range (64 bits)"))?;
            let _ = encode::write_uint(out, v);
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        let _ = encode::write_f64(out, f.value());
    } else if let Ok(s) = obj.cast::<PyString>() {
        let s = s.to_str()?;
        encode::write_str_len(out, len32(s.len(), "str")?).map_err(|_| too_long("str"))?;
        out.extend_from_slice(s.as_bytes());
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        bin(b.as_bytes(), out)?;
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        bin(&b.to_vec(), out)?;
    } else if let Ok(d) = obj.cast::<PyDict>() {
        encode::write_map_len(out, len32(d.len(), "dict")?).map_err(|_| too_long("dict"))?;
        for (k, v) in d.iter() {
            pack(&k, out, depth + 1)?;
            pack(&v, out, depth + 1)?;
        }
    } else if let Ok(l) = obj.cast::<PyList>() {
        encode::write_array_len(out, len32(l.len(), "list")?).map_err(|_| too_long("list"))?;
        for v in l.iter() {
            pack(&v, out, depth + 1)?;
        }
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        encode::write_array_len(out, len32(t.len(), "tuple")?).map_err(|_| too_long("tuple"))?;
        for v in t.iter() {
            pack(&v, out, depth + 1)?;
        }
    } else {
        let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!("msgpack: cannot serialize a {name}")));
    }
    Ok(())
}

fn bin(data: &[u8], out: &mut Vec<u8>) -> PyResult<()> {
    encode::write_bin_len(out, len32(data.len(), "bytes")?).map_err(|_| too_long("bytes"))?;
    out.extend_from_slice(data);
    Ok(())
}

/// The plain data of msgpack `data`: one whole object, nothing after it.
#[pyfunction]
pub fn unpackb<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut r = Reader { data, pos: 0 };
    let value = r.value(py, 0)?;
    if r.pos != data.len() {
        return Err(bad(format!("{} bytes of extra data", data.len() - r.pos)));
    }
    Ok(value)
}

/// The bytes of the length that follows a str, bin, array or map marker.
fn width(marker: Marker) -> usize {
    match marker {
        Marker::Str8 | Marker::Bin8 => 1,
        Marker::Str16 | Marker::Bin16 | Marker::Array16 | Marker::Map16 => 2,
        _ => 4,
    }
}

fn bad(message: String) -> PyErr {
    PyValueError::new_err(format!("msgpack: {message}"))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| bad("truncated data".into()))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len(&mut self, width: usize) -> PyResult<usize> {
        Ok(match width {
            1 => self.array::<1>()?[0] as usize,
            2 => u16::from_be_bytes(self.array()?) as usize,
            _ => u32::from_be_bytes(self.array()?) as usize,
        })
    }

    /// A count of items that each take at least one more byte: more than the bytes left is a
    /// lie, refused before anything is allocated for it.
    fn count(&mut self, width: usize) -> PyResult<usize> {
        let n = self.len(width)?;
        if n > self.data.len() - self.pos {
            return Err(bad("truncated data".into()));
        }
        Ok(n)
    }

    fn value<'py>(&mut self, py: Python<'py>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deep".into()));
        }
        let marker = Marker::from_u8(self.array::<1>()?[0]);
        let int = |v: i64| v.into_pyobject(py).map(|v| v.into_any());
        Ok(match marker {
            Marker::Null => py.None().into_bound(py),
            Marker::True => PyBool::new(py, true).to_owned().into_any(),
            Marker::False => PyBool::new(py, false).to_owned().into_any(),
            Marker::FixPos(v) => int(v.into())?,
            Marker::FixNeg(v) => int(v.into())?,
            Marker::U8 => int(self.array::<1>()?[0].into())?,
            Marker::U16 => int(u16::from_be_bytes(self.array()?).into())?,
            Marker::U32 => int(u32::from_be_bytes(self.array()?).into())?,
            Marker::U64 => u64::from_be_bytes(self.array()?).into_pyobject(py)?.into_any(),
            Marker::I8 => int(i8::from_be_bytes(self.array()?).into())?,
            Marker::I16 => int(i16::from_be_bytes(self.array()?).into())?,
            Marker::I32 => int(i32::from_be_bytes(self.array()?).into())?,
            Marker::I64 => int(i64::from_be_bytes(self.array()?))?,
            Marker::F32 => PyFloat::new(py, f32::from_be_bytes(self.array()?).into()).into_any(),
            Marker::F64 => PyFloat::new(py, f64::from_be_bytes(self.array()?)).into_any(),
            Marker::FixStr(n) => self.str(py, n as usize)?,
            Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                let n = self.len(width(marker))?;
                self.str(py, n)?
            }
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let n = self.len(width(marker))?;
                PyBytes::new(py, self.take(n)?).into_any()
            }
            Marker::FixArray(n) => self.list(py, n as usize, depth)?,
            Marker::Array16 | Marker::Array32 => {
                let n = self.count(width(marker))?;
                self.list(py, n, depth)?
            }
            Marker::FixMap(n) => self.map(py, n as usize, depth)?,
            Marker::Map16 | Marker::Map32 => {
                let n = self.count(width(marker))?;
                self.map(py, n, depth)?
            }
            Marker::Reserved => return Err(bad(format!("invalid byte 0xc1 at offset {}", self.pos - 1))),
            _ => return Err(bad(format!("extension types are not supported (at offset {})", self.pos - 1))),
        })
    }

    fn str<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let at = self.pos;
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| bad(format!("a str at offset {at} is not UTF-8")))?;
        Ok(PyString::new(py, s).into_any())
    }

    fn list<'py>(&mut self, py: Python<'py>, n: usize, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        let list = PyList::empty(py);
        for _ in 0..n {
            list.append(self.value(py, depth + 1)?)?;
        }
        Ok(list.into_any())
    }

    fn map<'py>(&mut self, py: Python<'py>, n: usize, depth: usize) -> PyResult<Bound<'py, PyAny>> {
        let dict = PyDict::new(py);
        for _ in 0..n {
            let at = self.pos;
            let key = self.value(py, depth + 1)?;
            // As msgpack's strict_map_key: a key is a str or bytes (never a list, which could
            // not be one, nor a number).
            if !(key.is_instance_of::<PyString>() || key.is_instance_of::<PyBytes>()) {
                return Err(bad(format!("a map key at offset {at} is not a str")));
            }
            let value = self.value(py, depth + 1)?;
            dict.set_item(key, value)?;
        }
        Ok(dict.into_any())
    }
}
