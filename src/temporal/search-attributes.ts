// The search attributes as the API side's Temporal modules name them; the list itself belongs to
// the workflow that sets them (workflows/search-attributes.ts).
export { PRIORITY_RANK, SA, SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.ts';
