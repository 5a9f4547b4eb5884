// Three freshly started proxies, one Redis, 3 x 1,500 requests at once, on_error "closed":
// at most the limit is admitted, nothing fails closed (no 503). See cold-start.ts.
import { coldStart } from './cold-start.js';

await coldStart('closed');
