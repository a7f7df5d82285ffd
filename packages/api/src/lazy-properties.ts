/**
 * Per-call objects whose properties are worked out only when read (a call's
 * AbortSignal, a response's Headers), without an object literal getter.
 *
 * Why not `{ get signal() { … } }`: V8 keeps every object literal getter in
 * an accessor pair it allocates in the old generation. The pair holds the
 * getter's closure, and the closure the call's whole scope, so each call
 * made that way survives every minor GC until the next full one, however
 * short the call was. On a busy gateway that turned most of a call's garbage
 * into promoted garbage: minor GC pauses four times longer, and full GCs
 * (BENCHMARKS.md). Here every object shares one getter per property name,
 * which V8 keeps once in a shared hidden class, and the getter finds its
 * source through the object itself.
 *
 * The properties are own and enumerable, as the literal's were, so an
 * interceptor spreading a request (`{ ...req, message }`) still carries them
 * (read, as a spread reads a getter).
 */

const kSource = Symbol("stategate.lazySource");

type Sourced = { [kSource]: Record<string, unknown> };

const descriptors = new Map<string, PropertyDescriptor>();

function descriptorOf(name: string): PropertyDescriptor {
  let descriptor = descriptors.get(name);
  if (descriptor === undefined) {
    descriptor = {
      get(this: Sourced) {
        return this[kSource][name];
      },
      enumerable: true,
      configurable: true,
    };
    descriptors.set(name, descriptor);
  }
  return descriptor;
}

/**
 * Gives `target` own, enumerable, read-only properties `names` that read the
 * same names of `source` each time they are read.
 *
 * @example
 * const req = forwardProperties({ stream: false, message }, call, ["signal"]);
 * req.signal; // call.signal, made now
 */
export function forwardProperties<T extends object, S extends object, K extends keyof S & string>(
  target: T,
  source: S,
  names: readonly K[],
): T & { readonly [P in K]: S[P] } {
  Object.defineProperty(target, kSource, { value: source, configurable: true });
  for (const name of names) Object.defineProperty(target, name, descriptorOf(name));
  return target as T & { readonly [P in K]: S[P] };
}
