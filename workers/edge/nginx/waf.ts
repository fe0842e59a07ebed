/**
 * ModSecurity files of an nginx edge: the engine configuration (our own, not
 * Debian's, which ships `SecRuleEngine DetectionOnly` and the CRS include
 * commented out — a WAF that blocks nothing), loaded once in `http {}`, and
 * one global file of per-site rules that set each site's CRS 3.3 paranoia
 * level or switch its transactions to DetectionOnly. `modsecurity on|off` per
 * server (./site.ts) decides whether a site runs the rules at all.
 *
 * The per-site rules are keyed on the transaction id, which each server block
 * sets to `<siteId>:$request_id` (modsecurity_transaction_id), not on the Host
 * header: nginx picks the server from the request line when it is in absolute
 * form (`GET http://a.example/ HTTP/1.1`) while ModSecurity sees the Host
 * header, so Host-keyed rules let a client run a level-2 site's request at the
 * level of whatever site it names in Host (tested: tests/integration/edge-nginx).
 * The id also names the site in every audit-log entry.
 *
 * SecLang is not nginx syntax; the only site value written here is the site
 * id, checked by siteIdOf ([A-Za-z0-9_-], so `:` ends it unambiguously).
 */
import type { SiteSpec, WafLevel } from '../../../producers/edge/model.js';
import { siteIdOf } from './escape.js';

export interface WafPaths {
  /** Debian: /usr/share/modsecurity-crs (rules/*.conf). */
  crsDir: string;
  /** Debian: /etc/modsecurity/crs/crs-setup.conf (sets tx.crs_setup_version and the default actions). */
  crsSetup: string;
  /** Absolute path of the rendered waf/paranoia.conf. */
  paranoiaFile: string;
  /** Writable directory for SecTmpDir/SecDataDir. */
  tempDir: string;
  auditLog: string;
  /** Debian: /etc/nginx/unicode.mapping (libnginx-mod-http-modsecurity); optional, used by t:urlDecodeUni. */
  unicodeMapFile?: string;
}

/** Local rule ids (1-99,999 are reserved for local use by the CRS). Two per site: level, detection-only. */
const FIRST_RULE_ID = 10_000;
export const MAX_WAF_SITES = Math.floor((99_999 - FIRST_RULE_ID) / 2);

export function renderModsecurityMain(paths: WafPaths): string {
  const lines = [
    '# Rendered by Relaygrid: the engine blocks (Debian ships DetectionOnly); `detect` sites are switched per host in paranoia.conf.',
    'SecRuleEngine On',
    'SecRequestBodyAccess On',
    'SecRequestBodyLimit 13107200',
    'SecRequestBodyNoFilesLimit 131072',
    'SecRequestBodyLimitAction Reject',
    'SecRequestBodyJsonDepthLimit 512',
    'SecArgumentsLimit 1000',
    // Debian's body processor selection: without it JSON/XML bodies are not parsed into ARGS.
    `SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"`,
    `SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"`,
    `SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',severity:2"`,
    // Response bodies are not inspected: it costs a buffered copy of every answer, and the RESPONSE-95x rules are leak detectors, not protection.
    'SecResponseBodyAccess Off',
    'SecPcreMatchLimit 1000',
    'SecPcreMatchLimitRecursion 1000',
    `SecTmpDir ${paths.tempDir}`,
    `SecDataDir ${paths.tempDir}`,
    'SecAuditEngine RelevantOnly',
    `SecAuditLogRelevantStatus "^(?:5|4(?!04))"`,
    'SecAuditLogParts ABIJDEFHZ',
    'SecAuditLogType Serial',
    `SecAuditLog ${paths.auditLog}`,
    'SecArgumentSeparator &',
    'SecCookieFormat 0',
    'SecStatusEngine Off',
    ...(paths.unicodeMapFile !== undefined ? [`SecUnicodeMapFile ${paths.unicodeMapFile} 20127`] : []),
    `Include ${paths.crsSetup}`,
    // Before the rules: REQUEST-901 only sets tx.paranoia_level when nothing set it yet.
    `Include ${paths.paranoiaFile}`,
    `Include ${paths.crsDir}/rules/*.conf`,
    '',
  ];
  return lines.join('\n');
}

/** The transaction id a site's server block gives ModSecurity (`modsecurity_transaction_id`). */
export function transactionIdPrefix(siteId: string): string {
  return `${siteIdOf(siteId)}:`;
}

/** What a level renders to: the CRS paranoia level, and whether the host's transactions only detect. */
export function wafRules(level: WafLevel): { modsecurity: boolean; paranoiaLevel: number; detectionOnly: boolean } {
  if (level === 'off') return { modsecurity: false, paranoiaLevel: 0, detectionOnly: false };
  if (level === 'detect') return { modsecurity: true, paranoiaLevel: 1, detectionOnly: true };
  return { modsecurity: true, paranoiaLevel: Number(level), detectionOnly: false };
}

/** waf/paranoia.conf: per WAF-enabled site, phase-1 rules keyed on its transaction ids. */
export function renderParanoia(sites: readonly SiteSpec[]): string {
  const lines = ['# Rendered by Relaygrid: per-site CRS 3.3 paranoia levels, keyed on the transaction id <siteId>:$request_id of the server nginx chose.'];
  let index = 0;
  for (const site of sites) {
    const rules = wafRules(site.waf.level);
    if (!rules.modsecurity) continue;
    if (index >= MAX_WAF_SITES) throw new Error(`more than ${MAX_WAF_SITES} WAF-enabled sites: no local rule ids left`);
    const id = FIRST_RULE_ID + index * 2;
    index += 1;
    const key = `SecRule UNIQUE_ID "@beginsWith ${transactionIdPrefix(site.siteId)}"`;
    const level = rules.paranoiaLevel;
    lines.push(`# site ${site.siteId} v${site.version}: waf ${site.waf.level}`);
    lines.push(`${key} "id:${id},phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=${level},setvar:tx.executing_paranoia_level=${level}"`);
    if (rules.detectionOnly) lines.push(`${key} "id:${id + 1},phase:1,pass,nolog,t:none,ctl:ruleEngine=DetectionOnly"`);
  }
  lines.push('');
  return lines.join('\n');
}
