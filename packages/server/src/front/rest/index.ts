import type { Door, DoorContext } from "../door.js";

/** REST routes from the google.api.http rules. Not served yet. */
export function createRestDoor(_ctx: DoorContext): Door {
  return { handle: async () => false };
}
