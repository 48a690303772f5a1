#include "drillmod.h"

#include "buf.h"
#include "drill.h"
#include "drillwriter.h"
#include "err.h"
#include "jsonlua.h"
#include "timefmt.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>

struct drill_module {
    dr_host *host;
    drill_writer *writer;
};

static drill_module *module_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static drill_module *in_drill(lua_State *L)
{
    drill_module *m = module_of(L);
    if (!m->host->drill)
        luaL_error(L, "the drill module works only inside drctl drill");
    return m;
}

static int l_active(lua_State *L)
{
    lua_pushboolean(L, module_of(L)->host->drill != NULL);
    return 1;
}

static int l_scope(lua_State *L)
{
    cJSON *scope = drill_scope_to_json(in_drill(L)->host->drill);
    return jsonlua_push_and_free(L, scope);
}

static int l_clear_default(lua_State *L)
{
    drill_scope_set_default(in_drill(L)->host->drill, NULL);
    return 0;
}

static void push_stats(lua_State *L, const drill_writer_stats *s)
{
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, s->inserted);
    lua_setfield(L, -2, "inserted");
    lua_pushinteger(L, s->updated);
    lua_setfield(L, -2, "updated");
    lua_pushinteger(L, s->failed);
    lua_setfield(L, -2, "failed");
    lua_pushinteger(L, s->reconnects);
    lua_setfield(L, -2, "reconnects");
    lua_pushnumber(L, (s->stopped > 0 ? s->stopped : timefmt_now()) - s->started);
    lua_setfield(L, -2, "seconds");
    lua_pushstring(L, s->last_error);
    lua_setfield(L, -2, "last_error");
}

static int l_writer_start(lua_State *L)
{
    drill_module *m = in_drill(L);
    const char *uri = luaL_checkstring(L, 1);
    int rate = (int)luaL_checkinteger(L, 2);
    if (m->host->plan_mode)
        return luaL_error(L, "drill.writer_start is refused in plan mode");
    if (m->writer) {
        lua_pushboolean(L, 0);
        return 1;
    }
    /* the writer has its own connection: it may write only to a drill's branch */
    char *where = drill_host_of_uri(uri);
    int owned = where && drill_scope_has(m->host->drill, DRILL_HOST, where);
    char refusal[512]; /* made and where freed before Lua, which may raise, has it */
    snprintf(refusal, sizeof refusal, "the drill refused a writer on %s: not one of the drill's branches",
             where ? where : "?");
    free(where);
    if (!owned)
        return drill_refuse_lua(L, m->host, refusal);
    if (!(m->writer = drill_writer_start(uri, rate)))
        return luaL_error(L, "%s", err_last());
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "writes_per_second", rate);
    m->host->event(m->host->ud, "drill-writer-started", data);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_writer_stop(lua_State *L)
{
    drill_module *m = in_drill(L);
    if (!m->writer) {
        lua_pushnil(L);
        return 1;
    }
    drill_writer_stats s;
    drill_writer_stop(&s, m->writer);
    m->writer = NULL;
    cJSON *data = cJSON_CreateObject();
    cJSON_AddNumberToObject(data, "inserted", (double)s.inserted);
    cJSON_AddNumberToObject(data, "updated", (double)s.updated);
    cJSON_AddNumberToObject(data, "failed", (double)s.failed);
    m->host->event(m->host->ud, "drill-writer-stopped", data);
    push_stats(L, &s);
    return 1;
}

static int l_writer_stats(lua_State *L)
{
    drill_module *m = in_drill(L);
    if (!m->writer) {
        lua_pushnil(L);
        return 1;
    }
    drill_writer_stats s;
    drill_writer_stats_of(&s, m->writer);
    push_stats(L, &s);
    return 1;
}

static int l_clock(lua_State *L)
{
    lua_pushnumber(L, timefmt_now());
    return 1;
}

static int open_drill(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "active", l_active }, { "scope", l_scope }, { "clear_default", l_clear_default },
        { "writer_start", l_writer_start }, { "writer_stop", l_writer_stop }, { "writer_stats", l_writer_stats },
        { "clock", l_clock }, { NULL, NULL },
    };
    luaL_newlibtable(L, functions);
    lua_pushvalue(L, lua_upvalueindex(1));
    luaL_setfuncs(L, functions, 1);
    lua_pushinteger(L, DRILL_WRITER_LOCK);
    lua_setfield(L, -2, "lock_key");
    return 1;
}

drill_module *drillmod_register(sandbox *sb, dr_host *host)
{
    drill_module *m = xcalloc(1, sizeof *m);
    m->host = host;
    sandbox_add_module(sb, "drill", open_drill, m);
    return m;
}

void drillmod_free(drill_module *m)
{
    if (!m)
        return;
    drill_writer_stop(NULL, m->writer);
    free(m);
}
