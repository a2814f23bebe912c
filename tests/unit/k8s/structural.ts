/**
 * An offline checker for the apiextensions.k8s.io/v1 rules a CRD schema must satisfy that can be verified without
 * an API server (k8s.io/apiextensions-apiserver pkg/apiserver/schema/validation.go and the CRD validation of
 * pkg/apis/apiextensions/validation): structural schema, allowed keywords, extensions, list-map keys, defaults
 * and printer-column paths. Returns one message per violation, with the schema path.
 */

type Node = Record<string, unknown>;

const ALLOWED = new Set([
  'type', 'format', 'title', 'description', 'default', 'nullable', 'maximum', 'exclusiveMaximum', 'minimum',
  'exclusiveMinimum', 'maxLength', 'minLength', 'pattern', 'maxItems', 'minItems', 'uniqueItems', 'multipleOf',
  'enum', 'maxProperties', 'minProperties', 'required', 'items', 'allOf', 'oneOf', 'anyOf', 'not', 'properties',
  'additionalProperties', 'example', 'externalDocs',
  'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string', 'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-validations',
]);
const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

function isObj(x: unknown): x is Node {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function structuralViolations(root: unknown): string[] {
  const out: string[] = [];
  const bad = (path: string, msg: string) => out.push(`${path}: ${msg}`);
  if (!isObj(root)) return ['openAPIV3Schema: not an object'];
  if (root.type !== 'object') bad('openAPIV3Schema', 'type must be object at the root');

  const walk = (n: Node, path: string, isRoot: boolean): void => {
    for (const k of Object.keys(n)) if (!ALLOWED.has(k)) bad(path, `keyword ${k} is not allowed`);
    for (const k of ['allOf', 'oneOf', 'anyOf', 'not']) if (k in n) bad(path, `${k} is not used by Mist (only value validation would be allowed)`);
    const preserve = n['x-kubernetes-preserve-unknown-fields'];
    const intOrString = n['x-kubernetes-int-or-string'];
    if (preserve !== undefined && preserve !== true) bad(path, 'x-kubernetes-preserve-unknown-fields must be true');
    if (intOrString !== undefined && intOrString !== true) bad(path, 'x-kubernetes-int-or-string must be true');
    if (intOrString === true && n.type !== undefined) bad(path, 'x-kubernetes-int-or-string must not have a type');
    if (n.type === undefined && intOrString !== true && preserve !== true) bad(path, 'type is required (structural schema)');
    if (n.type !== undefined && (typeof n.type !== 'string' || !TYPES.has(n.type))) bad(path, `invalid type ${JSON.stringify(n.type)}`);
    if (n.nullable !== undefined) bad(path, 'nullable is not used');
    if (n.uniqueItems === true) bad(path, 'uniqueItems: true is forbidden');
    if ('exclusiveMinimum' in n && typeof n.exclusiveMinimum !== 'boolean') bad(path, 'exclusiveMinimum must be a boolean (OpenAPI v3.0)');
    if ('exclusiveMaximum' in n && typeof n.exclusiveMaximum !== 'boolean') bad(path, 'exclusiveMaximum must be a boolean (OpenAPI v3.0)');
    if ((n.exclusiveMinimum === true && n.minimum === undefined) || (n.exclusiveMaximum === true && n.maximum === undefined)) bad(path, 'exclusive bound without the bound');
    if ('additionalProperties' in n) {
      if (n.additionalProperties === false) bad(path, 'additionalProperties: false is forbidden');
      if ('properties' in n) bad(path, 'additionalProperties and properties are mutually exclusive');
      if (n.additionalProperties === true && preserve !== true) bad(path, 'additionalProperties: true needs x-kubernetes-preserve-unknown-fields');
    }
    if ((n.properties !== undefined || n.additionalProperties !== undefined) && n.type !== 'object') bad(path, 'properties need type object');
    if (n.type === 'array') {
      if (!isObj(n.items)) bad(path, 'arrays need a single items schema');
    } else if ('items' in n) bad(path, 'items needs type array');
    if (Array.isArray(n.required)) {
      for (const r of n.required) if (!isObj(n.properties) || !(String(r) in (n.properties as Node))) bad(path, `required field ${r} is not a property`);
    }
    if (isRoot) {
      const meta = (n.properties as Node | undefined)?.metadata;
      if (isObj(meta) && Object.keys(meta).some((k) => k !== 'type' && k !== 'description')) bad(`${path}.properties.metadata`, 'only type object is allowed on metadata (restrict names with CEL)');
    }
    // list maps
    const listType = n['x-kubernetes-list-type'];
    if (listType !== undefined) {
      if (n.type !== 'array') bad(path, 'x-kubernetes-list-type needs type array');
      if (!['atomic', 'set', 'map'].includes(String(listType))) bad(path, `unknown list type ${listType}`);
      if (listType === 'map') {
        const keys = n['x-kubernetes-list-map-keys'];
        const item = n.items as Node;
        if (!Array.isArray(keys) || keys.length === 0) bad(path, 'list-type map needs x-kubernetes-list-map-keys');
        else for (const key of keys) {
          const ks = isObj(item?.properties) ? (item.properties as Node)[String(key)] : undefined;
          if (!isObj(ks) || !['string', 'integer', 'boolean', 'number'].includes(String(ks.type))) bad(path, `map key ${key} must be a scalar property of the items`);
          const req = Array.isArray(item?.required) && (item.required as unknown[]).includes(key);
          if (!req && !(isObj(ks) && 'default' in ks)) bad(path, `map key ${key} must be required or defaulted`);
        }
      }
    } else if ('x-kubernetes-list-map-keys' in n) bad(path, 'x-kubernetes-list-map-keys without list-type map');
    // CEL rules: well-formed entries; transition rules only where oldSelf exists
    const rules = n['x-kubernetes-validations'];
    if (rules !== undefined) {
      if (!Array.isArray(rules)) bad(path, 'x-kubernetes-validations must be a list');
      else for (const r of rules) {
        if (!isObj(r) || typeof r.rule !== 'string' || r.rule.trim() === '') bad(path, 'a validation needs a rule');
        else {
          if (r.message !== undefined && (typeof r.message !== 'string' || r.message.includes('\n'))) bad(path, 'message must be one line');
          if (r.reason !== undefined && !['FieldValueInvalid', 'FieldValueForbidden', 'FieldValueRequired', 'FieldValueDuplicate'].includes(String(r.reason))) bad(path, `invalid reason ${r.reason}`);
          if (typeof r.fieldPath === 'string') {
            const f = r.fieldPath.replace(/^\./, '');
            if (!isObj(n.properties) || !(f in (n.properties as Node))) bad(path, `fieldPath ${r.fieldPath} is not a property`);
          }
          // fields CEL can see: typed or int-or-string; untyped preserve-unknown fields are invisible
          for (const m of r.rule.matchAll(/(?:self|oldSelf)\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
            const f = m[1];
            if (isRoot && f === 'metadata') continue;
            const sub = isObj(n.properties) ? (n.properties as Node)[f] : undefined;
            if (!isObj(sub)) bad(path, `rule names ${f}, which is not a property`);
            else if (sub.type === undefined && sub['x-kubernetes-int-or-string'] !== true) bad(path, `rule names ${f}, which has no type: CEL cannot see it`);
          }
        }
      }
    }
    if (isObj(n.properties)) for (const [k, v] of Object.entries(n.properties)) {
      if (!isObj(v)) bad(`${path}.properties.${k}`, 'not a schema');
      else walk(v, `${path}.properties.${k}`, false);
    }
    if (isObj(n.items)) walk(n.items, `${path}.items`, false);
    if (isObj(n.additionalProperties)) walk(n.additionalProperties, `${path}.additionalProperties`, false);
  };
  walk(root, 'openAPIV3Schema', true);
  return out;
}

/** Whether the simple JSONPath `.a.b.c` names a node of the schema (printer columns). */
export function schemaHasPath(root: unknown, jsonPath: string): boolean {
  let cur: unknown = root;
  for (const part of jsonPath.replace(/^\./, '').split('.')) {
    if (part === 'metadata' && cur === root) return true; // ObjectMeta fields are always there
    const props = isObj(cur) ? cur.properties : undefined;
    if (!isObj(props) || !isObj(props[part])) return false;
    cur = props[part];
  }
  return true;
}
