"""Every error reasonrag raises on purpose, in one tree.

Catch ``ReasonRAGError`` for all of them. Each class knows the process exit code the CLI
uses for it and the HTTP status the server answers with, so both front ends map errors
the same way; anything that is not a ``ReasonRAGError`` is a bug and surfaces as one::

    ReasonRAGError                  exit 1, HTTP 500
    ├── InputError                  exit 2, HTTP 400   bad argument, file, field or record
    │   ├── ConfigError                                invalid configuration (file and field)
    │   ├── NotFoundError           HTTP 404           a named file, folder or model is missing
    │   ├── DatasetError                               a dataset file cannot be used
    │   ├── RunMismatchError        HTTP 409           a run folder holds other settings
    │   ├── ContextLengthError                         a prompt exceeds the model's context
    │   ├── UnauthorizedError       HTTP 401           no or a wrong server API key
    │   ├── PayloadTooLargeError    HTTP 413           a request body over the server's limit
    │   └── UnsupportedTypeError    HTTP 415           an upload of a file type not indexed
    ├── IndexStoreError             exit 2, HTTP 400   problems with an index folder
    │   ├── NotAnIndexError         HTTP 404           no index there (or not ours)
    │   ├── IndexDamagedError       exit 3, HTTP 500   a file of the index is unreadable
    │   ├── IndexMismatchError      HTTP 409           built with another embedder/tokenizer
    │   ├── EmptyIndexError                            nothing indexable in the input
    │   ├── DocumentNotFoundError   HTTP 404           an id that is not in the index
    │   └── IndexBusyError          exit 4, HTTP 409   another writer holds the index
    ├── BackendError                exit 1, HTTP 502   a model backend or service failed
    │   └── GenerationError                            a generator gave up after retries
    └── ServerBusyError             exit 1, HTTP 503   the server's question queue is full
        └── AnswerTimeoutError      HTTP 504           a question took over the time limit

The input errors also derive from ``ValueError`` and the backend errors from
``RuntimeError``, so code written against the built-in types keeps working.
"""

from __future__ import annotations

from typing import ClassVar


class ReasonRAGError(Exception):
    """Root of reasonrag's errors; the message says what failed and, where it can, what to
    do about it."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500


class InputError(ReasonRAGError, ValueError):
    """The caller's input is wrong: a missing file, a bad option, a malformed record."""

    exit_code = 2
    http_status = 400


class ConfigError(InputError):
    """A configuration file or value is invalid; the message names the file and field."""


class NotFoundError(InputError, FileNotFoundError):
    """A file, folder or model that the input names does not exist (nothing is ever
    downloaded, so a missing model is a missing path)."""

    http_status = 404


class DatasetError(InputError):
    """A dataset file cannot be evaluated (unreadable, no usable records, bad sample size)."""


class RunMismatchError(InputError):
    """The run folder holds a run made with other settings; resuming would mix them."""

    http_status = 409


class ContextLengthError(InputError):
    """A prompt does not fit the model's context window; the message names the limit."""


class UnauthorizedError(InputError):
    """A server request without the right API key."""

    http_status = 401


class PayloadTooLargeError(InputError):
    """A request body larger than the server accepts."""

    http_status = 413


class UnsupportedTypeError(InputError):
    """An uploaded file of a type the index cannot read."""

    http_status = 415


class IndexStoreError(ReasonRAGError, ValueError):
    """Something is wrong with an index folder; the message names the folder or file."""

    exit_code = 2
    http_status = 400


class NotAnIndexError(IndexStoreError):
    """The folder holds no reasonrag index (and, when written to, is not empty)."""

    http_status = 404


class IndexDamagedError(IndexStoreError):
    """An index file is truncated, unreadable or disagrees with the manifest."""

    exit_code = 3
    http_status = 500


class IndexMismatchError(IndexStoreError):
    """The index was built with another embedder (or tokenizer) than the one requested."""

    http_status = 409


class EmptyIndexError(IndexStoreError):
    """Nothing indexable was found in the given paths."""


class DocumentNotFoundError(IndexStoreError):
    """A document id that the index does not hold."""

    http_status = 404


class IndexBusyError(IndexStoreError):
    """Another process is writing the index and this writer chose not to wait."""

    exit_code = 4
    http_status = 409


class BackendError(ReasonRAGError, RuntimeError):
    """A model backend or remote service failed."""

    exit_code = 1
    http_status = 502


class GenerationError(BackendError):
    """A backend failed after its retries; the message names the backend and cause."""


class ServerBusyError(ReasonRAGError):
    """The server holds as many questions as it may; the client should retry later."""

    http_status = 503


class AnswerTimeoutError(ServerBusyError):
    """A question was not answered within the server's time limit."""

    http_status = 504
