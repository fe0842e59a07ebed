/** Every projection the runtime can run, by name (`relaygrid projector <name>`). */
import { usersProjection } from './identity/users.projection.js';
import type { Projection } from './runtime/projection.js';

export const PROJECTIONS: ReadonlyMap<string, Projection> = new Map([[usersProjection.name, usersProjection]]);
