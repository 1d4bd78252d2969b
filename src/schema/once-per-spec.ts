// One load or compilation per spec file, however many settings name it: YAML aliases let a small
// config name one spec from thousands of upstreams (check took 45 s for 1,000, a reload 33 s).
// Each caller (a start, a reload, check, a worker's compile) makes its own, so a file changed
// since is read again next time.

/** `make` called once per spec path (with the first call's other arguments); later calls for the path get its promise. */
export function oncePerSpec<A extends unknown[], T>(make: (path: string, ...rest: A) => Promise<T>): (path: string, ...rest: A) => Promise<T> {
  const made = new Map<string, Promise<T>>();
  return (path, ...rest) => {
    let result = made.get(path);
    if (result === undefined) {
      result = make(path, ...rest);
      made.set(path, result);
    }
    return result;
  };
}
