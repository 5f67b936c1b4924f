/*
 * report_html.c - one self-contained HTML file: an interactive flame graph
 * (click to zoom, search, total / peak / leaked / temporary) and the memory
 * over time chart.  No network, no external script: the data is one JSON
 * block, the drawing a small inline script producing SVG.
 *
 * The data is the stacks merged into a tree (outermost frame first), nodes
 * in preorder as [parent, name, total, peak, leaked, temporary, count].
 * Nodes under 1/20000 of the root in every metric are dropped (at any zoom
 * a browser could show they are narrower than a pixel of a 20000-pixel
 * graph), so the file stays small and the page fast for large profiles.
 *
 * The page also reads its settings from the URL fragment
 * (#metric=peak&search=leak&zoom=NAME) and reports what it drew in
 * data-* attributes of <body>: the test opens it headless and checks them.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

struct tnode {
    uint32_t name;
    uint64_t v[5]; /* total, peak, leaked, temporary bytes, total count */
    size_t first_kid, next; /* linked children, SIZE_MAX = none */
};

struct tree {
    struct tnode *n;
    size_t len, cap;
};

struct names {
    struct prof_stats map; /* key -> index in size */
    const char **v;
    size_t n, cap;
};

static uint32_t name_id(struct names *nm, const char *s)
{
    struct prof_stat *e = prof_stats_find(&nm->map, s);
    if (e)
        return (uint32_t)e->size;
    prof_stats_add(&nm->map, s, nm->n, 0);
    if (nm->n == nm->cap) {
        nm->cap = nm->cap ? nm->cap * 2 : 256;
        nm->v = prof_xrealloc(nm->v, nm->cap * sizeof *nm->v);
    }
    nm->v[nm->n] = prof_stats_find(&nm->map, s)->key;
    return (uint32_t)nm->n++;
}

static size_t new_node(struct tree *t, uint32_t name)
{
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->n = prof_xrealloc(t->n, t->cap * sizeof *t->n);
    }
    struct tnode *n = &t->n[t->len];
    memset(n, 0, sizeof *n);
    n->name = name;
    n->first_kid = n->next = SIZE_MAX;
    return t->len++;
}

static size_t kid(struct tree *t, size_t parent, uint32_t name)
{
    for (size_t k = t->n[parent].first_kid; k != SIZE_MAX; k = t->n[k].next)
        if (t->n[k].name == name)
            return k;
    size_t k = new_node(t, name);
    t->n[k].next = t->n[parent].first_kid;
    t->n[parent].first_kid = k;
    return k;
}

static void frame_label(struct prof_view *v, uint64_t addr, char *buf, size_t cap)
{
    const struct prof_frame *f = prof_symbolize(v->sym, addr);
    const char *name = prof_frame_name(v->sym, f);
    if (f->file) {
        const char *b = strrchr(f->file, '/');
        snprintf(buf, cap, "%s (%s:%d)", name, b ? b + 1 : f->file, f->line);
    } else {
        snprintf(buf, cap, "%s", name);
    }
}

/* Preorder output of the kept nodes; ids are renumbered as written. */
static void emit(struct tree *t, size_t i, long parent, long *next_id, const uint64_t *root,
                 FILE *out)
{
    const struct tnode *n = &t->n[i];
    int keep = parent < 0;
    for (int k = 0; k < 4 && !keep; k++)
        keep = n->v[k] * 20000 >= root[k] && n->v[k] > 0;
    if (!keep)
        return;
    long id = (*next_id)++;
    fprintf(out, "%s[%ld,%u,%llu,%llu,%llu,%llu,%llu]", id ? ",\n" : "", parent, n->name,
            (unsigned long long)n->v[0], (unsigned long long)n->v[1], (unsigned long long)n->v[2],
            (unsigned long long)n->v[3], (unsigned long long)n->v[4]);
    for (size_t k = n->first_kid; k != SIZE_MAX; k = t->n[k].next)
        emit(t, k, id, next_id, root, out);
}

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<style>\n"
    "body{font:13px system-ui,sans-serif;margin:16px;color:#222;background:#fff}\n"
    "h1{font-size:17px;margin:0 0 4px} .sub{color:#555;margin:0 0 10px}\n"
    "table.sum td{padding:1px 12px 1px 0} table.sum td:first-child{color:#555}\n"
    ".bar{margin:10px 0 6px;display:flex;gap:6px;align-items:center;flex-wrap:wrap}\n"
    ".bar button{font:inherit;padding:3px 9px;border:1px solid #999;background:#f4f4f4;"
    "border-radius:3px;cursor:pointer}\n"
    ".bar button.on{background:#333;color:#fff;border-color:#333}\n"
    ".bar input{font:inherit;padding:3px 6px;width:16em}\n"
    "#fg rect{stroke:#fff;stroke-width:.5;cursor:pointer} #fg rect.hit{fill:#d0f}\n"
    "#fg text{font:11px monospace;pointer-events:none;fill:#000}\n"
    "#info{font-family:monospace;min-height:1.4em;color:#333;white-space:pre}\n"
    "#chart text{font:11px sans-serif;fill:#444} .axis{stroke:#999}\n"
    "</style>\n";

static const char page_body[] =
    "</head><body>\n"
    "<h1 id=\"title\"></h1><p class=\"sub\" id=\"subtitle\"></p>\n"
    "<table class=\"sum\" id=\"summary\"></table>\n"
    "<h2 style=\"font-size:15px\">Memory over time</h2>\n"
    "<svg id=\"chart\" width=\"1000\" height=\"260\" viewBox=\"0 0 1000 260\"></svg>\n"
    "<h2 style=\"font-size:15px\">Flame graph</h2>\n"
    "<div class=\"bar\"><span>Show:</span>\n"
    "<button data-m=\"0\">allocated in total</button><button data-m=\"1\">live at peak</button>"
    "<button data-m=\"2\">leaked</button><button data-m=\"3\">temporary</button>\n"
    "<input id=\"search\" placeholder=\"search (text or /regex/)\">"
    "<button id=\"reset\">reset zoom</button><span id=\"match\"></span></div>\n"
    "<div id=\"info\"> </div>\n"
    "<svg id=\"fg\" width=\"1200\" height=\"100\"></svg>\n";

/* The page's script: written for this report, no library. */
static const char page_script[] =
    "<script>\n"
    "'use strict';\n"
    "const D=JSON.parse(document.getElementById('data').textContent);\n"
    "const NS='http://www.w3.org/2000/svg';\n"
    "const MN=['allocated in total','live at peak','leaked','temporary'];\n"
    "const N=D.nodes.length,kids=[],depth=new Int32Array(N);\n"
    "for(let i=0;i<N;i++)kids.push([]);\n"
    "for(let i=1;i<N;i++){const p=D.nodes[i][0];kids[p].push(i);depth[i]=depth[p]+1;}\n"
    "let metric=0,zoom=0,search='',re=null;\n"
    /* tracemalloc's size format: xx.x below 100 units, else whole */
    "function fsize(b){const u=['B','KiB','MiB','GiB','TiB'];let s=b;for(let i=0;i<5;i++){\n"
    " const a=Math.abs(s);if(a<100&&i>0)return s.toFixed(1)+' '+u[i];\n"
    " if(a<10240||i==4)return Math.round(s)+' '+u[i];s/=1024;}}\n"
    "function el(tag,attrs,parent){const e=document.createElementNS(NS,tag);\n"
    " for(const k in attrs)e.setAttribute(k,attrs[k]);if(parent)parent.appendChild(e);return e;}\n"
    "function val(i){return D.nodes[i][2+metric];}\n"
    "function nm(i){return D.names[D.nodes[i][1]];}\n"
    "function color(name){let h=0;for(let i=0;i<name.length;i++)h=(h*31+name.charCodeAt(i))>>>0;\n"
    " return 'hsl('+(10+h%45)+','+(60+h%30)+'%,'+(52+(h>>8)%14)+'%)';}\n"
    "function hit(i){return re!==null&&re.test(nm(i));}\n"
    "function summary(){const m=D.meta,t=document.getElementById('summary');\n"
    " document.title='rcgc-prof: '+m.cmd;document.getElementById('title').textContent='rcgc-prof: '+m.cmd;\n"
    " document.getElementById('subtitle').textContent='pid '+m.pid+', '+m.state+', ran '+(m.duration_ms/1000).toFixed(2)+' s';\n"
    " const rows=[['peak heap',fsize(m.peak_bytes)+' at '+(m.peak_ms/1000).toFixed(2)+' s'],\n"
    "  ['peak RSS',fsize(m.peak_rss)],['allocated',m.alloc_calls+' calls, '+fsize(m.alloc_bytes)],\n"
    "  ['temporary',m.temp_calls+' calls'],['leaked',fsize(m.leaked_bytes)+' in '+m.leaked_blocks+' blocks']];\n"
    " for(const r of rows){const tr=t.insertRow();tr.insertCell().textContent=r[0];tr.insertCell().textContent=r[1];}}\n"
    "function chart(){const s=D.samples,svg=document.getElementById('chart');svg.textContent='';\n"
    " const W=1000,H=260,L=70,R=10,T=10,B=30;let tmax=D.meta.duration_ms||1,ymax=1;\n"
    " for(const p of s){ymax=Math.max(ymax,p[1],p[2]);tmax=Math.max(tmax,p[0]);}\n"
    " ymax=Math.max(ymax,D.meta.peak_bytes);\n"
    " const X=t=>L+(W-L-R)*t/tmax,Y=b=>H-B-(H-T-B)*b/ymax;\n"
    " el('line',{x1:L,y1:H-B,x2:W-R,y2:H-B,class:'axis'},svg);el('line',{x1:L,y1:T,x2:L,y2:H-B,class:'axis'},svg);\n"
    " for(let k=0;k<=4;k++){const b=ymax*k/4,y=Y(b);el('line',{x1:L-4,y1:y,x2:L,y2:y,class:'axis'},svg);\n"
    "  const tx=el('text',{x:L-6,y:y+4,'text-anchor':'end'},svg);tx.textContent=fsize(b);\n"
    "  const t=tmax*k/4,x=X(t);const tt=el('text',{x:x,y:H-B+16,'text-anchor':'middle'},svg);tt.textContent=(t/1000).toFixed(2)+' s';}\n"
    " const line=(k,col,id)=>{if(!s.length)return;el('polyline',{id:id,fill:'none',stroke:col,'stroke-width':1.5,\n"
    "  points:s.map(p=>X(p[0]).toFixed(1)+','+Y(p[k]).toFixed(1)).join(' ')},svg);};\n"
    " line(1,'#888','rss');line(2,'#c33','heap');\n"
    " el('circle',{id:'peak',cx:X(D.meta.peak_ms),cy:Y(D.meta.peak_bytes),r:4,fill:'#c33'},svg);\n"
    " const lg=el('text',{x:L+10,y:T+12},svg);lg.textContent='red: heap in use (peak '+fsize(D.meta.peak_bytes)+'), grey: RSS';\n"
    " document.body.dataset.samples=s.length;}\n"
    "function flame(){const svg=document.getElementById('fg');svg.textContent='';\n"
    " const W=Math.max(600,(document.documentElement.clientWidth||1200)-40),FH=17;\n"
    " let maxd=0,drawn=0,matched=0;const rows=[];\n"

    " const place=(i,x,w)=>{if(w<0.4)return;rows.push([i,x,w]);if(depth[i]>maxd)maxd=depth[i];\n"
    "  const t=val(i);if(t<=0)return;let cx=x;const ks=kids[i].slice().sort((a,b)=>val(b)-val(a));\n"
    "  for(const k of ks){const kw=w*val(k)/t;if(val(k)>0)place(k,cx,kw);cx+=kw;}};\n"
    " for(let a=D.nodes[zoom][0];a>=0;a=D.nodes[a][0])rows.push([a,0,W]);\n"
    " place(zoom,0,W);\n"
    " for(const r of rows)if(depth[r[0]]>maxd)maxd=depth[r[0]];\n"
    " const Hh=(maxd+1)*FH+4;svg.setAttribute('width',W);svg.setAttribute('height',Hh);svg.setAttribute('viewBox','0 0 '+W+' '+Hh);\n"
    " const tot=val(0)||1;\n"
    " for(const [i,x,w] of rows){const y=Hh-(depth[i]+1)*FH,name=nm(i),h=hit(i);\n"
    "  const g=el('g',{},svg);const r=el('rect',{x:x.toFixed(2),y:y,width:Math.max(0.4,w).toFixed(2),height:FH-1,\n"
    "   fill:color(name),'data-node':i},g);if(h){r.setAttribute('class','hit');matched++;}\n"
    "  const ti=el('title',{},r);ti.textContent=name+'\\n'+fsize(val(i))+' ('+(100*val(i)/tot).toFixed(2)+'%), '+D.nodes[i][6]+' allocation calls';\n"
    "  if(w>36){const tx=el('text',{x:x+3,y:y+12},g);const c=Math.floor((w-6)/6.6);\n"
    "   tx.textContent=name.length>c?name.slice(0,Math.max(0,c-2))+'..':name;}\n"
    "  drawn++;}\n"
    " let mb=0;if(re){const walk=i=>{if(hit(i)){mb+=val(i);return;}for(const k of kids[i])walk(k);};walk(0);}\n"
    " document.getElementById('match').textContent=re?('matched: '+fsize(mb)+' ('+(100*mb/tot).toFixed(1)+'%)'):'';\n"
    " for(const b of document.querySelectorAll('.bar button[data-m]'))b.classList.toggle('on',+b.dataset.m===metric);\n"
    " const bd=document.body.dataset;bd.metric=MN[metric];bd.drawn=drawn;bd.matched=matched;bd.zoom=nm(zoom);bd.total=val(0);}\n"
    "function render(){flame();}\n"
    "document.getElementById('fg').addEventListener('click',e=>{const n=e.target.getAttribute&&e.target.getAttribute('data-node');\n"
    " if(n!==null&&n!==undefined){zoom=+n;render();}});\n"
    "document.getElementById('fg').addEventListener('mousemove',e=>{const n=e.target.getAttribute&&e.target.getAttribute('data-node');\n"
    " if(n!==null&&n!==undefined){const i=+n;document.getElementById('info').textContent=nm(i)+'  '+fsize(val(i))+' '+MN[metric]+', '+D.nodes[i][6]+' calls';}});\n"
    "for(const b of document.querySelectorAll('.bar button[data-m]'))b.addEventListener('click',()=>{metric=+b.dataset.m;render();});\n"
    "document.getElementById('reset').addEventListener('click',()=>{zoom=0;render();});\n"
    "function setSearch(q){search=q;re=null;if(q){try{re=q.length>2&&q[0]=='/'&&q.endsWith('/')?new RegExp(q.slice(1,-1)):\n"
    " new RegExp(q.replace(/[.*+?^${}()|[\\]\\\\]/g,'\\\\$&'));}catch(e){re=null;}}render();}\n"
    "document.getElementById('search').addEventListener('input',e=>setSearch(e.target.value));\n"
    "function fromHash(){const h=new URLSearchParams(location.hash.slice(1));\n"
    " if(h.has('metric')){const m=['total','peak','leaked','temporary'].indexOf(h.get('metric'));if(m>=0)metric=m;}\n"
    " if(h.has('zoom')){for(let i=0;i<N;i++)if(nm(i).startsWith(h.get('zoom'))){zoom=i;break;}}\n"
    " if(h.has('search')){document.getElementById('search').value=h.get('search');setSearch(h.get('search'));}}\n"
    "summary();chart();fromHash();render();window.addEventListener('resize',render);\n"
    "document.body.dataset.ready='1';\n"
    "</script>\n</body></html>\n";

int prof_report_html(struct prof_view *v, FILE *out)
{
    const struct prof_capture *c = v->c;
    struct tree t = { 0 };
    struct names nm = { 0 };
    size_t root = new_node(&t, name_id(&nm, "all"));
    char label[1024];
    for (size_t i = 0; i < c->n_stacks; i++) {
        const struct prof_stack *s = &c->stacks[i];
        uint64_t vals[5] = { prof_bytes(s, PROF_TOTAL), prof_bytes(s, PROF_PEAK),
                             prof_bytes(s, PROF_LEAKED), prof_bytes(s, PROF_TEMPORARY),
                             prof_count(s, PROF_TOTAL) };
        size_t n = root;
        for (int k = 0; k < 5; k++)
            t.n[n].v[k] += vals[k];
        for (uint32_t f = s->nframes; f-- > 0;) {
            frame_label(v, s->frames[f], label, sizeof label);
            n = kid(&t, n, name_id(&nm, label));
            for (int k = 0; k < 5; k++)
                t.n[n].v[k] += vals[k];
        }
    }
    fputs(page_head, out);
    fputs("<title>rcgc-prof</title>\n", out);
    fputs(page_body, out);
    fputs("<script id=\"data\" type=\"application/json\">{\"meta\":{\"cmd\":", out);
    prof_json_str(out, c->cmdline[0] ? c->cmdline : c->exe);
    char st[160];
    fputs(",\"state\":", out);
    prof_json_str(out, prof_state_name(c, st, sizeof st));
    fprintf(out,
            ",\"pid\":%llu,\"duration_ms\":%llu,\"peak_bytes\":%llu,\"peak_ms\":%llu,"
            "\"peak_rss\":%llu,\"alloc_calls\":%llu,\"alloc_bytes\":%llu,\"temp_calls\":%llu,"
            "\"leaked_bytes\":%llu,\"leaked_blocks\":%llu},\n\"names\":[",
            (unsigned long long)c->pid, (unsigned long long)c->duration_ms,
            (unsigned long long)c->peak_bytes, (unsigned long long)c->peak_ms,
            (unsigned long long)c->peak_rss, (unsigned long long)c->alloc_calls,
            (unsigned long long)c->alloc_bytes, (unsigned long long)c->temp_calls,
            (unsigned long long)c->cur_bytes, (unsigned long long)c->cur_count);
    for (size_t i = 0; i < nm.n; i++) {
        if (i)
            fputc(',', out);
        prof_json_str(out, nm.v[i]);
    }
    fputs("],\n\"samples\":[", out);
    for (size_t i = 0; i < c->n_samples; i++)
        fprintf(out, "%s[%llu,%llu,%llu]", i ? "," : "", (unsigned long long)c->samples[i].t_ms,
                (unsigned long long)c->samples[i].rss, (unsigned long long)c->samples[i].heap);
    fputs("],\n\"nodes\":[", out);
    long next_id = 0;
    uint64_t rootv[4] = { t.n[root].v[0], t.n[root].v[1], t.n[root].v[2], t.n[root].v[3] };
    emit(&t, root, -1, &next_id, rootv, out);
    fputs("]}</script>\n", out);
    fputs(page_script, out);
    free(t.n);
    free(nm.v);
    prof_stats_free(&nm.map);
    return 0;
}
