import type { Door, DoorContext } from "../door.js";

/** GraphQL at /api/graphql. Not served yet. */
export function createGraphqlDoor(_ctx: DoorContext): Door {
  return { handle: async () => false };
}
