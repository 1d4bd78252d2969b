// The most a PEM file of an identity (a key, a chain, a trust bundle, a join token) may hold:
// a bundle of a few dozen roots is tens of KiB; a larger file is a wrong path (`/dev/zero`
// took `run` to 626 MB before its error, an OOM kill loop under a 256 MiB limit).

export const MAX_PEM_FILE_BYTES = 1024 * 1024;
