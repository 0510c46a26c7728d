/*
 * nube_v1.h: the host API nube_v1 for modules written in C (HOSTAPI.md).
 *
 * Build for WASI preview 1 with clang and wasi-libc:
 *
 *     clang --target=wasm32-wasi -O2 -o module.wasm main.c
 *
 * Pointers and lengths are into the module's own memory; strings are
 * UTF-8 with no terminating NUL, passed as (pointer, length). Every
 * function returns zero or more on success and a negative NUBE_E_* code
 * on failure, whose text nube_error_message then gives. A handle (from
 * nube_open, nube_space_get, nube_space_list, nube_call) is read with
 * nube_read until it returns 0 and freed with nube_close; a run has at
 * most 64 open at once.
 */
#ifndef NUBE_V1_H
#define NUBE_V1_H

#include <stdint.h>

#define NUBE_IMPORT(name) __attribute__((import_module("nube_v1"), import_name(name)))

/* Error codes. A code not listed here is to be treated as NUBE_E_FAILED. */
#define NUBE_E_DENIED (-1)      /* the run's capability does not allow this */
#define NUBE_E_NOT_FOUND (-2)   /* no such CID, path, key or service */
#define NUBE_E_INVALID (-3)     /* a malformed argument, or a pointer outside memory */
#define NUBE_E_TOO_LARGE (-4)   /* over a size limit, or out_cap too small */
#define NUBE_E_BAD_HANDLE (-5)  /* no such open handle */
#define NUBE_E_LIMIT (-6)       /* the run's budget is spent: depth, time, credit or handles */
#define NUBE_E_UNAVAILABLE (-7) /* the data or the node that has it could not be reached */
#define NUBE_E_FAILED (-8)      /* anything else */

/* The most bytes a CID's text takes: enough for nube_add's out_cap. */
#define NUBE_CID_MAX 128

/* Errors and logging */

/* Copies the message of the last error this run got (up to cap bytes);
 * returns its length. */
NUBE_IMPORT("error_message")
int32_t nube_error_message(uint8_t *buf, uint32_t cap);

/* Adds one line (at most 4 KiB) to the caller's run record; returns 0. */
NUBE_IMPORT("log")
int32_t nube_log(const uint8_t *ptr, uint32_t len);

/* Streams */

/* Reads up to cap bytes into buf; returns how many, 0 at the end. */
NUBE_IMPORT("read")
int64_t nube_read(int32_t handle, uint8_t *buf, uint32_t cap);

/* How many bytes are left to read on handle, or NUBE_E_INVALID when the
 * host does not know. */
NUBE_IMPORT("size")
int64_t nube_size(int32_t handle);

/* Frees the handle; returns 0. */
NUBE_IMPORT("close")
int32_t nube_close(int32_t handle);

/* Content */

/* Opens a file by CID or CID/path for reading; returns a handle. */
NUBE_IMPORT("open")
int64_t nube_open(const uint8_t *path, uint32_t path_len);

/* Adds the bytes as a file and writes its CID (text) into out; returns
 * the CID's length. */
NUBE_IMPORT("add")
int32_t nube_add(const uint8_t *data, uint32_t data_len, uint8_t *out, uint32_t out_cap);

/* Spaces (named OWNER/NAME) */

/* Returns a handle to the key's value. Needs read. */
NUBE_IMPORT("space_get")
int64_t nube_space_get(const uint8_t *space, uint32_t space_len, const uint8_t *key, uint32_t key_len);

/* Sets the key; returns 0 once the space's home applied it. Needs write. */
NUBE_IMPORT("space_put")
int32_t nube_space_put(const uint8_t *space, uint32_t space_len, const uint8_t *key, uint32_t key_len,
                       const uint8_t *val, uint32_t val_len);

/* Removes the key; returns 0. Needs write. */
NUBE_IMPORT("space_delete")
int32_t nube_space_delete(const uint8_t *space, uint32_t space_len, const uint8_t *key, uint32_t key_len);

/* Returns a handle to the keys under the prefix, sorted, each as a 4-byte
 * little-endian length and then the key. Needs read. */
NUBE_IMPORT("space_list")
int64_t nube_space_list(const uint8_t *space, uint32_t space_len, const uint8_t *prefix, uint32_t prefix_len);

/* Calls */

/* Runs a service or pipeline (a name, name@version, a descriptor CID, or
 * stages joined by "|") on the input; returns a handle to its output. */
NUBE_IMPORT("call")
int64_t nube_call(const uint8_t *ref, uint32_t ref_len, const uint8_t *in, uint32_t in_len);

#undef NUBE_IMPORT

#endif /* NUBE_V1_H */
