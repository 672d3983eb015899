"""Small file helpers that work on local disks and on ``gs://`` alike.

Everything vsearch keeps (records, markers, configs, results) is written by
``write_atomically``: to a temporary name beside the target, then renamed
into place, so a reader (another worker, the report, a resumed run) never
sees half a file, whatever moment the writer is killed at. On a local disk
the temporary file is flushed to the disk (fsync) before the rename, and the
folder after it, so a power cut cannot leave an empty or half-written file
under the final name either.
"""

import errno
import os
import uuid

import tensorflow as tf

# Temporary files carry this in their name; listings skip them.
TEMPORARY_MARK = ".tmp-"

# What a full disk or quota says, as OSError errno and in TensorFlow's messages
# (TensorFlow reports ENOSPC as ResourceExhaustedError, like running out of memory).
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXTS = tuple(os.strerror(n) for n in _DISK_FULL_ERRNOS)


def is_remote(path: str) -> bool:
  """Whether ``path`` is on an object store (``gs://``, ``s3://``, ...)."""
  return "://" in path


def is_disk_full(error: BaseException) -> bool:
  """Whether ``error``, or an error it was raised from, says a disk or quota is full."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
      return True
    if any(text in str(error) for text in _DISK_FULL_TEXTS):
      return True
    error = error.__cause__ or error.__context__
  return False


def write_atomically(path: str, content: str | bytes, *, overwrite: bool = True) -> None:
  """Writes ``content`` to ``path`` all at once.

  Args:
    path: the file to write (local or ``gs://``).
    content: text or bytes.
    overwrite: replace an existing file. Without it an existing ``path`` is
      kept and ``FileExistsError`` raised: on local disks this is atomic (a
      hard link fails if the name exists, so of two racing writers exactly
      one wins); on object stores it is a check then a rename.

  Raises:
    FileExistsError: ``overwrite`` is False and ``path`` exists.
    OSError: the disk is full (``errno.ENOSPC``) or the write failed.
  """
  temporary = f"{path}{TEMPORARY_MARK}{uuid.uuid4().hex}"
  data = content.encode() if isinstance(content, str) else content
  try:
    if is_remote(path):
      with tf.io.gfile.GFile(temporary, "wb") as f:
        f.write(data)
      tf.io.gfile.rename(temporary, path, overwrite=overwrite)
    else:
      with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
      if overwrite:
        os.replace(temporary, path)
      else:
        os.link(temporary, path)
      _sync_folder(os.path.dirname(path) or ".")
  except (FileExistsError, tf.errors.AlreadyExistsError) as e:
    raise FileExistsError(f"{path} exists") from e
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.remove(temporary)


def _sync_folder(folder: str) -> None:
  """Makes a rename in ``folder`` durable; some file systems cannot, which is fine."""
  try:
    descriptor = os.open(folder, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(descriptor)
  except OSError:
    pass
  finally:
    os.close(descriptor)
