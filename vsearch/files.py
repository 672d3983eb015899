"""Small file helpers that work on local disks and on ``gs://`` alike.

Everything vsearch keeps (records, markers, configs, results) is written by
``write_atomically``: to a temporary name beside the target, then renamed
into place, so a reader (another worker, the report, a resumed run) never
sees half a file, whatever moment the writer is killed at.
"""

import os
import uuid

import tensorflow as tf

# Temporary files carry this in their name; listings skip them.
TEMPORARY_MARK = ".tmp-"


def is_remote(path: str) -> bool:
  """Whether ``path`` is on an object store (``gs://``, ``s3://``, ...)."""
  return "://" in path


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
  """
  temporary = f"{path}{TEMPORARY_MARK}{uuid.uuid4().hex}"
  with tf.io.gfile.GFile(temporary, "wb" if isinstance(content, bytes) else "w") as f:
    f.write(content)
  try:
    if overwrite:
      tf.io.gfile.rename(temporary, path, overwrite=True)
    elif is_remote(path):
      tf.io.gfile.rename(temporary, path, overwrite=False)
    else:
      os.link(temporary, path)
  except (FileExistsError, tf.errors.AlreadyExistsError) as e:
    raise FileExistsError(f"{path} exists") from e
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.remove(temporary)
