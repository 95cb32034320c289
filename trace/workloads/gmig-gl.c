// SPDX-License-Identifier: GPL-2.0
/*
 * gmig-gl: offscreen OpenGL ES 3.1 workloads whose Gen9 command streams
 * gmig's GPU write-set analysis is measured on (scripts/trace.sh runs them
 * on Mesa's iris driver over its stub i915 device; they run on llvmpipe
 * too). Usage: gmig-gl WORKLOAD [FRAMES], FRAMES default 3.
 *
 *   desktop  a compositor: eight 512x384 window textures blended onto a
 *            1920x1080 framebuffer, two windows damaged per frame
 *            (glTexSubImage2D), one animated by drawing into its texture,
 *            a cursor on top, the frame blitted to a scanout buffer (flip).
 *   game     a 3D frame: a 1024x1024 depth-only shadow pass, a 1280x720
 *            RGBA16F (RGBA8 without EXT_color_buffer_float) + D24S8 main
 *            pass drawing instanced cubes and a floor grid from vertex and
 *            index buffers with a UBO of matrices, a mipmapped texture
 *            (glGenerateMipmap each frame), then post-processing: a bright
 *            pass and two blur passes at half resolution and a tonemap pass
 *            to RGBA8. Clears and mipmap generation are BLORP operations.
 *   compute  compute shaders: one writes an std430 SSBO, one imageStores to
 *            RGBA8 and R32F images, one counts with atomicAdd on an SSBO;
 *            glMemoryBarrier between them; one glDispatchComputeIndirect.
 *   video    a player: a 1280x720 frame uploaded as Y (R8) and UV (RG8)
 *            planes, Y from client memory, UV through a pixel unpack
 *            buffer; a YUV to RGB draw; a GL_LINEAR scaling blit to
 *            1920x1080; glCopyImageSubData of a region to a thumbnail.
 *   all      each of the above in turn.
 *
 * The stub device never runs a batch nor writes memory, so nothing here
 * waits for a GPU result (no GL_QUERY_RESULT, no fence polling, no mapped
 * read back): each frame ends with glFlush (the driver submits), each
 * workload with glFinish; the setup is flushed before the first frame.
 * Exit status 0 only if no GL error occurred.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES3/gl31.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

typedef void (*copy_image_fn)(GLuint, GLenum, GLint, GLint, GLint, GLint,
			      GLuint, GLenum, GLint, GLint, GLint, GLint,
			      GLsizei, GLsizei, GLsizei);

static copy_image_fn copy_image;
static int has_float_rt;

static void die(const char *what)
{
	fprintf(stderr, "gmig-gl: %s\n", what);
	exit(1);
}

static int gl_ok(const char *where)
{
	GLenum err = glGetError();

	if (err == GL_NO_ERROR)
		return 1;
	fprintf(stderr, "gmig-gl: %s: GL error 0x%04x\n", where, err);
	while (glGetError() != GL_NO_ERROR)
		;
	return 0;
}

/* ---- shaders ---- */

static const char *version = "#version 310 es\nprecision highp float;\n";

static GLuint compile_shader(GLenum type, const char *src)
{
	const char *srcs[2] = { version, src };
	GLuint s = glCreateShader(type);
	GLint ok;
	char log[4096];

	glShaderSource(s, 2, srcs, NULL);
	glCompileShader(s);
	glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
	if (!ok) {
		glGetShaderInfoLog(s, sizeof(log), NULL, log);
		fprintf(stderr, "gmig-gl: shader compile failed:\n%s\n%s\n",
			log, src);
		exit(1);
	}
	return s;
}

static GLuint link_program(GLuint a, GLuint b)
{
	GLuint p = glCreateProgram();
	GLint ok;
	char log[4096];

	glAttachShader(p, a);
	if (b)
		glAttachShader(p, b);
	glLinkProgram(p);
	glGetProgramiv(p, GL_LINK_STATUS, &ok);
	if (!ok) {
		glGetProgramInfoLog(p, sizeof(log), NULL, log);
		fprintf(stderr, "gmig-gl: program link failed:\n%s\n", log);
		exit(1);
	}
	glDeleteShader(a);
	if (b)
		glDeleteShader(b);
	return p;
}

static GLuint program(const char *vs, const char *fs)
{
	return link_program(compile_shader(GL_VERTEX_SHADER, vs),
			    compile_shader(GL_FRAGMENT_SHADER, fs));
}

static GLuint compute_program(const char *cs)
{
	return link_program(compile_shader(GL_COMPUTE_SHADER, cs), 0);
}

/*
 * A quad from gl_VertexID (GL_TRIANGLE_STRIP, 4 vertices, no attribute):
 * u_rect is x0, y0, x1, y1 in normalized device coordinates.
 */
static const char *quad_vs =
	"uniform vec4 u_rect;\n"
	"out vec2 v_uv;\n"
	"void main() {\n"
	"	vec2 c = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1));\n"
	"	v_uv = c;\n"
	"	gl_Position = vec4(mix(u_rect.xy, u_rect.zw, c), 0.0, 1.0);\n"
	"}\n";

static void draw_quad(GLuint prog, float x0, float y0, float x1, float y1)
{
	glUniform4f(glGetUniformLocation(prog, "u_rect"), x0, y0, x1, y1);
	glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
}

static void fullscreen(GLuint prog)
{
	draw_quad(prog, -1.0f, -1.0f, 1.0f, 1.0f);
}

/* ---- textures and framebuffers ---- */

static GLuint texture(GLenum format, int w, int h, int levels, GLenum filter)
{
	GLuint t;

	glGenTextures(1, &t);
	glBindTexture(GL_TEXTURE_2D, t);
	glTexStorage2D(GL_TEXTURE_2D, levels, format, w, h);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER,
			filter == GL_NEAREST ? GL_NEAREST : GL_LINEAR);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
	return t;
}

static GLuint renderbuffer(GLenum format, int w, int h)
{
	GLuint rb;

	glGenRenderbuffers(1, &rb);
	glBindRenderbuffer(GL_RENDERBUFFER, rb);
	glRenderbufferStorage(GL_RENDERBUFFER, format, w, h);
	return rb;
}

/* An FBO; colour (texture or renderbuffer) and depth may be 0. */
static GLuint make_fb(GLuint color_tex, GLuint color_rb, GLuint depth_tex,
		      GLuint depth_stencil_rb)
{
	GLuint fb;
	GLenum none = GL_NONE;
	GLenum status;

	glGenFramebuffers(1, &fb);
	glBindFramebuffer(GL_FRAMEBUFFER, fb);
	if (color_tex)
		glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0,
				       GL_TEXTURE_2D, color_tex, 0);
	if (color_rb)
		glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0,
					  GL_RENDERBUFFER, color_rb);
	if (!color_tex && !color_rb) {
		glDrawBuffers(1, &none);
		glReadBuffer(GL_NONE);
	}
	if (depth_tex)
		glFramebufferTexture2D(GL_FRAMEBUFFER, GL_DEPTH_ATTACHMENT,
				       GL_TEXTURE_2D, depth_tex, 0);
	if (depth_stencil_rb)
		glFramebufferRenderbuffer(GL_FRAMEBUFFER,
					  GL_DEPTH_STENCIL_ATTACHMENT,
					  GL_RENDERBUFFER, depth_stencil_rb);
	status = glCheckFramebufferStatus(GL_FRAMEBUFFER);
	if (status != GL_FRAMEBUFFER_COMPLETE) {
		fprintf(stderr, "gmig-gl: framebuffer incomplete: 0x%04x\n",
			status);
		exit(1);
	}
	return fb;
}

static void bind_target(GLuint fb, int w, int h)
{
	glBindFramebuffer(GL_FRAMEBUFFER, fb);
	glViewport(0, 0, w, h);
}

static void bind_tex(int unit, GLuint t)
{
	glActiveTexture(GL_TEXTURE0 + unit);
	glBindTexture(GL_TEXTURE_2D, t);
}

static GLuint buffer(GLenum target, GLsizeiptr size, const void *data,
		     GLenum usage)
{
	GLuint b;

	glGenBuffers(1, &b);
	glBindBuffer(target, b);
	glBufferData(target, size, data, usage);
	return b;
}

/* A cheap moving pattern of n bytes. */
static void pattern(unsigned char *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 7 + (i >> 9) * 13 + seed * 29) ^
				       (i >> 4));
}

/* ---- desktop ---- */

#define DESK_W		1920
#define DESK_H		1080
#define WIN_W		512
#define WIN_H		384
#define NWIN		8
#define CURSOR		32
#define DAMAGE_W	128
#define DAMAGE_H	64

static const char *desk_fs =
	"uniform sampler2D u_tex;\n"
	"uniform float u_alpha;\n"
	"in vec2 v_uv;\n"
	"layout(location = 0) out vec4 o;\n"
	"void main() {\n"
	"	vec4 c = texture(u_tex, v_uv);\n"
	"	o = vec4(c.rgb, c.a * u_alpha);\n"
	"}\n";

static const char *solid_fs =
	"uniform vec4 u_color;\n"
	"layout(location = 0) out vec4 o;\n"
	"void main() {\n"
	"	o = u_color;\n"
	"}\n";

static struct {
	GLuint blend, solid;
	GLuint win[NWIN], cursor;
	GLuint screen_tex, screen_fb, scanout_rb, scanout_fb, anim_fb;
	unsigned char *damage;
} desk;

static void desktop_setup(void)
{
	size_t n = WIN_W * WIN_H * 4;
	unsigned char *pix = malloc(n);
	int i;

	if (!pix)
		die("out of memory");
	desk.damage = malloc(DAMAGE_W * DAMAGE_H * 4);
	if (!desk.damage)
		die("out of memory");
	desk.blend = program(quad_vs, desk_fs);
	desk.solid = program(quad_vs, solid_fs);
	for (i = 0; i < NWIN; i++) {
		desk.win[i] = texture(GL_RGBA8, WIN_W, WIN_H, 1, GL_LINEAR);
		pattern(pix, n, i);
		glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, WIN_W, WIN_H, GL_RGBA,
				GL_UNSIGNED_BYTE, pix);
	}
	desk.cursor = texture(GL_RGBA8, CURSOR, CURSOR, 1, GL_NEAREST);
	pattern(pix, CURSOR * CURSOR * 4, 99);
	glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, CURSOR, CURSOR, GL_RGBA,
			GL_UNSIGNED_BYTE, pix);
	free(pix);
	desk.screen_tex = texture(GL_RGBA8, DESK_W, DESK_H, 1, GL_NEAREST);
	desk.screen_fb = make_fb(desk.screen_tex, 0, 0, 0);
	desk.scanout_rb = renderbuffer(GL_RGBA8, DESK_W, DESK_H);
	desk.scanout_fb = make_fb(0, desk.scanout_rb, 0, 0);
	desk.anim_fb = make_fb(desk.win[0], 0, 0, 0);
}

/* Pixel rectangle to NDC on the 1920x1080 screen, then draw. */
static void desk_rect(GLuint prog, int x, int y, int w, int h)
{
	draw_quad(prog, 2.0f * x / DESK_W - 1.0f, 2.0f * y / DESK_H - 1.0f,
		  2.0f * (x + w) / DESK_W - 1.0f,
		  2.0f * (y + h) / DESK_H - 1.0f);
}

static void desktop_frame(int f)
{
	int i;

	/* Clients damage two windows; the compositor uploads the damage. */
	for (i = 0; i < 2; i++) {
		int w = 1 + (f * 2 + i) % (NWIN - 1);

		pattern(desk.damage, DAMAGE_W * DAMAGE_H * 4, f * 2 + i);
		bind_tex(0, desk.win[w]);
		glTexSubImage2D(GL_TEXTURE_2D, 0, (f * 37) % (WIN_W - DAMAGE_W),
				(f * 23) % (WIN_H - DAMAGE_H), DAMAGE_W,
				DAMAGE_H, GL_RGBA, GL_UNSIGNED_BYTE,
				desk.damage);
	}

	/* Window 0 is animated: a client draws a moving bar into it. */
	bind_target(desk.anim_fb, WIN_W, WIN_H);
	glUseProgram(desk.solid);
	glUniform4f(glGetUniformLocation(desk.solid, "u_color"),
		    0.2f, 0.4f + 0.1f * (f % 6), 0.8f, 1.0f);
	draw_quad(desk.solid, -1.0f + 0.1f * (f % 18), -0.2f,
		  -0.8f + 0.1f * (f % 18), 0.2f);

	/* Composite: background, windows back to front, cursor. */
	bind_target(desk.screen_fb, DESK_W, DESK_H);
	glClearColor(0.1f, 0.2f, 0.3f, 1.0f);
	glClear(GL_COLOR_BUFFER_BIT);
	glEnable(GL_BLEND);
	glBlendFunc(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA);
	glUseProgram(desk.blend);
	glUniform1i(glGetUniformLocation(desk.blend, "u_tex"), 0);
	glUniform1f(glGetUniformLocation(desk.blend, "u_alpha"), 0.9f);
	for (i = 0; i < NWIN; i++) {
		bind_tex(0, desk.win[i]);
		desk_rect(desk.blend, 60 + i * 170, 40 + (i % 4) * 160 +
			  (i == 0 ? f * 4 : 0), WIN_W, WIN_H);
	}
	glUniform1f(glGetUniformLocation(desk.blend, "u_alpha"), 1.0f);
	bind_tex(0, desk.cursor);
	desk_rect(desk.blend, 900 + f * 11, 500 + f * 7, CURSOR, CURSOR);
	glDisable(GL_BLEND);

	/* Page flip: copy the frame to the scanout buffer. */
	glBindFramebuffer(GL_READ_FRAMEBUFFER, desk.screen_fb);
	glBindFramebuffer(GL_DRAW_FRAMEBUFFER, desk.scanout_fb);
	glBlitFramebuffer(0, 0, DESK_W, DESK_H, 0, 0, DESK_W, DESK_H,
			  GL_COLOR_BUFFER_BIT, GL_NEAREST);
}

static void desktop_teardown(void)
{
	GLuint fbs[] = { desk.screen_fb, desk.scanout_fb, desk.anim_fb };

	glDeleteFramebuffers(ARRAY_SIZE(fbs), fbs);
	glDeleteRenderbuffers(1, &desk.scanout_rb);
	glDeleteTextures(NWIN, desk.win);
	glDeleteTextures(1, &desk.cursor);
	glDeleteTextures(1, &desk.screen_tex);
	glDeleteProgram(desk.blend);
	glDeleteProgram(desk.solid);
	free(desk.damage);
}

/* ---- game ---- */

#define GAME_W		1280
#define GAME_H		720
#define SHADOW		1024
#define NCUBES		64
#define GRID		32
#define DIFFUSE		256

/* The Scene block, std140. */
struct scene {
	float view_proj[16];
	float light_vp[16];
	float light_dir[4];
	float offsets[NCUBES][4];
};

#define SCENE_BLOCK							\
	"layout(std140) uniform Scene {\n"				\
	"	mat4 view_proj;\n"					\
	"	mat4 light_vp;\n"					\
	"	vec4 light_dir;\n"					\
	"	vec4 offsets[64];\n"					\
	"};\n"								\
	"uniform int u_instanced;\n"					\
	"layout(location = 0) in vec3 a_pos;\n"				\
	"layout(location = 1) in vec3 a_nrm;\n"				\
	"vec3 world() {\n"						\
	"	vec4 o = offsets[gl_InstanceID];\n"			\
	"	return u_instanced != 0 ? a_pos * o.w + o.xyz : a_pos;\n" \
	"}\n"

static const char *shadow_vs =
	SCENE_BLOCK
	"void main() {\n"
	"	gl_Position = light_vp * vec4(world(), 1.0);\n"
	"}\n";

static const char *shadow_fs =
	"void main() {\n"
	"}\n";

static const char *scene_vs =
	SCENE_BLOCK
	"out vec3 v_nrm;\n"
	"out vec4 v_light;\n"
	"out vec2 v_uv;\n"
	"void main() {\n"
	"	vec3 p = world();\n"
	"	v_nrm = a_nrm;\n"
	"	v_light = light_vp * vec4(p, 1.0);\n"
	"	v_uv = p.xz * 0.25 + a_nrm.xy * 0.5;\n"
	"	gl_Position = view_proj * vec4(p, 1.0);\n"
	"}\n";

static const char *scene_fs =
	"uniform highp sampler2DShadow u_shadow;\n"
	"uniform sampler2D u_diffuse;\n"
	"uniform vec3 u_light;\n"
	"in vec3 v_nrm;\n"
	"in vec4 v_light;\n"
	"in vec2 v_uv;\n"
	"layout(location = 0) out vec4 o;\n"
	"void main() {\n"
	"	vec3 l = v_light.xyz / v_light.w * 0.5 + 0.5;\n"
	"	float s = texture(u_shadow, l);\n"
	"	float d = max(dot(normalize(v_nrm), -u_light), 0.0);\n"
	"	vec3 c = texture(u_diffuse, v_uv).rgb;\n"
	"	o = vec4(c * (0.2 + 2.8 * d * s), 1.0);\n"
	"}\n";

static const char *bright_fs =
	"uniform sampler2D u_tex;\n"
	"in vec2 v_uv;\n"
	"layout(location = 0) out vec4 o;\n"
	"void main() {\n"
	"	vec3 c = texture(u_tex, v_uv).rgb;\n"
	"	o = vec4(max(c - 1.0, 0.0), 1.0);\n"
	"}\n";

static const char *blur_fs =
	"uniform sampler2D u_tex;\n"
	"uniform vec2 u_step;\n"
	"in vec2 v_uv;\n"
	"layout(location = 0) out vec4 o;\n"
	"void main() {\n"
	"	vec3 c = texture(u_tex, v_uv).rgb * 0.4;\n"
	"	for (int i = 1; i < 4; i++) {\n"
	"		vec2 d = u_step * float(i);\n"
	"		float w = 0.3 / float(i * i);\n"
	"		c += texture(u_tex, v_uv + d).rgb * w;\n"
	"		c += texture(u_tex, v_uv - d).rgb * w;\n"
	"	}\n"
	"	o = vec4(c, 1.0);\n"
	"}\n";

static const char *tonemap_fs =
	"uniform sampler2D u_tex;\n"
	"uniform sampler2D u_bloom;\n"
	"in vec2 v_uv;\n"
	"layout(location = 0) out vec4 o;\n"
	"void main() {\n"
	"	vec3 c = texture(u_tex, v_uv).rgb + texture(u_bloom, v_uv).rgb;\n"
	"	o = vec4(c / (1.0 + c), 1.0);\n"
	"}\n";

static struct {
	GLuint shadow_prog, scene_prog, bright, blur, tonemap;
	GLuint vbo[2], ibo, ubo, vao[2];
	GLuint shadow_tex, shadow_fb;
	GLuint hdr_tex, ds_rb, hdr_fb;
	GLuint half_tex[2], half_fb[2];
	GLuint ldr_tex, ldr_fb;
	GLuint diffuse;
	unsigned char *texels;
	int grid_indices;
} game;

static void mat_mul(float *r, const float *a, const float *b)
{
	float t[16];
	int i, j, k;

	for (i = 0; i < 4; i++)
		for (j = 0; j < 4; j++) {
			t[i * 4 + j] = 0.0f;
			for (k = 0; k < 4; k++)
				t[i * 4 + j] += a[k * 4 + j] * b[i * 4 + k];
		}
	memcpy(r, t, sizeof(t));
}

static void normalize(float *v)
{
	float l = sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
	int i;

	for (i = 0; i < 3; i++)
		v[i] /= l;
}

/* Column-major look-at from eye e to the origin, y up. */
static void look_at(float *m, float ex, float ey, float ez)
{
	float e[3] = { ex, ey, ez };
	float f[3] = { -ex, -ey, -ez }, s[3], u[3];
	int i;

	normalize(f);
	s[0] = -f[2];	/* f x (0, 1, 0) */
	s[1] = 0.0f;
	s[2] = f[0];
	normalize(s);
	u[0] = s[1] * f[2] - s[2] * f[1];
	u[1] = s[2] * f[0] - s[0] * f[2];
	u[2] = s[0] * f[1] - s[1] * f[0];
	memset(m, 0, 16 * sizeof(*m));
	for (i = 0; i < 3; i++) {
		m[i * 4] = s[i];
		m[i * 4 + 1] = u[i];
		m[i * 4 + 2] = -f[i];
		m[12] -= s[i] * e[i];
		m[13] -= u[i] * e[i];
		m[14] += f[i] * e[i];
	}
	m[15] = 1.0f;
}

static void perspective(float *m, float fovy, float aspect, float n, float f)
{
	float t = 1.0f / tanf(fovy / 2.0f);

	memset(m, 0, 16 * sizeof(*m));
	m[0] = t / aspect;
	m[5] = t;
	m[10] = (f + n) / (n - f);
	m[11] = -1.0f;
	m[14] = 2.0f * f * n / (n - f);
}

static void ortho(float *m, float half, float n, float f)
{
	memset(m, 0, 16 * sizeof(*m));
	m[0] = 1.0f / half;
	m[5] = 1.0f / half;
	m[10] = -2.0f / (f - n);
	m[14] = -(f + n) / (f - n);
	m[15] = 1.0f;
}

static GLuint mesh_vao(GLuint vbo)
{
	GLuint vao;

	glGenVertexArrays(1, &vao);
	glBindVertexArray(vao);
	glBindBuffer(GL_ARRAY_BUFFER, vbo);
	glVertexAttribPointer(0, 3, GL_FLOAT, GL_FALSE, 6 * sizeof(float),
			      (void *)0);
	glVertexAttribPointer(1, 3, GL_FLOAT, GL_FALSE, 6 * sizeof(float),
			      (void *)(3 * sizeof(float)));
	glEnableVertexAttribArray(0);
	glEnableVertexAttribArray(1);
	glBindBuffer(GL_ELEMENT_ARRAY_BUFFER, game.ibo);
	glBindVertexArray(0);
	return vao;
}

/*
 * Vertex buffer 0: a unit cube, 24 vertices (position, normal); vertex
 * buffer 1: a GRID x GRID floor. One index buffer: the cube's 36 indices,
 * then the floor's.
 */
static void game_meshes(void)
{
	static const GLushort quad[6] = { 0, 1, 2, 2, 1, 3 };
	static const GLushort grid_quad[6] = {
		0, GRID, 1, 1, GRID, GRID + 1
	};
	float cube[24 * 6], *grid, *v;
	GLushort *idx, *ix;
	int nidx = 36 + (GRID - 1) * (GRID - 1) * 6;
	int face, i, j, x, z;

	grid = malloc(GRID * GRID * 6 * sizeof(*grid));
	idx = malloc(nidx * sizeof(*idx));
	if (!grid || !idx)
		die("out of memory");
	v = cube;
	ix = idx;
	for (face = 0; face < 6; face++) {
		int axis = face / 2;
		float sign = face & 1 ? -1.0f : 1.0f;

		for (i = 0; i < 4; i++) {
			float a = i & 1 ? 0.5f : -0.5f;
			float b = i & 2 ? 0.5f : -0.5f;

			for (j = 0; j < 3; j++) {
				int k = (j - axis + 3) % 3;

				v[j] = k == 0 ? 0.5f * sign : k == 1 ? a : b;
				v[3 + j] = k == 0 ? sign : 0.0f;
			}
			v += 6;
		}
		for (i = 0; i < 6; i++)
			*ix++ = face * 4 + quad[i];
	}
	v = grid;
	for (z = 0; z < GRID; z++)
		for (x = 0; x < GRID; x++) {
			v[0] = (x - GRID / 2) * 0.5f;
			v[1] = -0.5f;
			v[2] = (z - GRID / 2) * 0.5f;
			v[3] = 0.0f;
			v[4] = 1.0f;
			v[5] = 0.0f;
			v += 6;
		}
	for (z = 0; z < GRID - 1; z++)
		for (x = 0; x < GRID - 1; x++) {
			for (i = 0; i < 6; i++)
				*ix++ = z * GRID + x + grid_quad[i];
		}
	game.grid_indices = nidx - 36;
	game.vbo[0] = buffer(GL_ARRAY_BUFFER, sizeof(cube), cube,
			     GL_STATIC_DRAW);
	game.vbo[1] = buffer(GL_ARRAY_BUFFER,
			     GRID * GRID * 6 * sizeof(*grid), grid,
			     GL_STATIC_DRAW);
	game.ibo = buffer(GL_ELEMENT_ARRAY_BUFFER, nidx * sizeof(*idx), idx,
			  GL_STATIC_DRAW);
	game.vao[0] = mesh_vao(game.vbo[0]);
	game.vao[1] = mesh_vao(game.vbo[1]);
	free(grid);
	free(idx);
}

static void game_setup(void)
{
	GLenum hdr = has_float_rt ? GL_RGBA16F : GL_RGBA8;
	int i;

	game.shadow_prog = program(shadow_vs, shadow_fs);
	game.scene_prog = program(scene_vs, scene_fs);
	game.bright = program(quad_vs, bright_fs);
	game.blur = program(quad_vs, blur_fs);
	game.tonemap = program(quad_vs, tonemap_fs);
	glUniformBlockBinding(game.shadow_prog,
			      glGetUniformBlockIndex(game.shadow_prog,
						     "Scene"), 0);
	glUniformBlockBinding(game.scene_prog,
			      glGetUniformBlockIndex(game.scene_prog,
						     "Scene"), 0);
	game_meshes();
	game.ubo = buffer(GL_UNIFORM_BUFFER, sizeof(struct scene), NULL,
			  GL_DYNAMIC_DRAW);

	game.shadow_tex = texture(GL_DEPTH_COMPONENT32F, SHADOW, SHADOW, 1,
				  GL_NEAREST);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_COMPARE_MODE,
			GL_COMPARE_REF_TO_TEXTURE);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_COMPARE_FUNC, GL_LEQUAL);
	game.shadow_fb = make_fb(0, 0, game.shadow_tex, 0);

	game.hdr_tex = texture(hdr, GAME_W, GAME_H, 1, GL_LINEAR);
	game.ds_rb = renderbuffer(GL_DEPTH24_STENCIL8, GAME_W, GAME_H);
	game.hdr_fb = make_fb(game.hdr_tex, 0, 0, game.ds_rb);
	for (i = 0; i < 2; i++) {
		game.half_tex[i] = texture(hdr, GAME_W / 2, GAME_H / 2, 1,
					   GL_LINEAR);
		game.half_fb[i] = make_fb(game.half_tex[i], 0, 0, 0);
	}
	game.ldr_tex = texture(GL_RGBA8, GAME_W, GAME_H, 1, GL_LINEAR);
	game.ldr_fb = make_fb(game.ldr_tex, 0, 0, 0);

	/* 256x256, nine levels: level 0 changes, the rest are generated. */
	game.diffuse = texture(GL_RGBA8, DIFFUSE, DIFFUSE, 9,
			       GL_LINEAR_MIPMAP_LINEAR);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_REPEAT);
	glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_REPEAT);
	game.texels = malloc(DIFFUSE * DIFFUSE * 4);
	if (!game.texels)
		die("out of memory");
	pattern(game.texels, DIFFUSE * DIFFUSE * 4, 1);
	glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, DIFFUSE, DIFFUSE, GL_RGBA,
			GL_UNSIGNED_BYTE, game.texels);
}

static void game_scene(int f)
{
	struct scene s;
	float view[16], proj[16];
	float a = 0.3f * f;
	int i;

	look_at(view, 12.0f * cosf(a), 6.0f, 12.0f * sinf(a));
	perspective(proj, 1.0f, (float)GAME_W / GAME_H, 0.5f, 60.0f);
	mat_mul(s.view_proj, proj, view);
	look_at(view, 8.0f, 12.0f, 4.0f);
	ortho(proj, 10.0f, 1.0f, 40.0f);
	mat_mul(s.light_vp, proj, view);
	s.light_dir[0] = -8.0f / 15.1f;
	s.light_dir[1] = -12.0f / 15.1f;
	s.light_dir[2] = -4.0f / 15.1f;
	s.light_dir[3] = 0.0f;
	for (i = 0; i < NCUBES; i++) {
		s.offsets[i][0] = (i % 8 - 3.5f) * 1.6f;
		s.offsets[i][1] = 0.5f * sinf(a + i);
		s.offsets[i][2] = (i / 8 - 3.5f) * 1.6f;
		s.offsets[i][3] = 0.6f + 0.05f * (i % 5);
	}
	glBindBuffer(GL_UNIFORM_BUFFER, game.ubo);
	glBufferSubData(GL_UNIFORM_BUFFER, 0, sizeof(s), &s);
	glBindBufferBase(GL_UNIFORM_BUFFER, 0, game.ubo);
}

static void game_draw_meshes(GLuint prog)
{
	GLint inst = glGetUniformLocation(prog, "u_instanced");

	glUniform1i(inst, 1);
	glBindVertexArray(game.vao[0]);
	glDrawElementsInstanced(GL_TRIANGLES, 36, GL_UNSIGNED_SHORT, NULL,
				NCUBES);
	glUniform1i(inst, 0);
	glBindVertexArray(game.vao[1]);
	glDrawElements(GL_TRIANGLES, game.grid_indices, GL_UNSIGNED_SHORT,
		       (void *)(36 * sizeof(GLushort)));
	glBindVertexArray(0);
}

static void game_post(GLuint prog, GLuint src, GLuint dst_fb, int w, int h)
{
	bind_target(dst_fb, w, h);
	glUseProgram(prog);
	glUniform1i(glGetUniformLocation(prog, "u_tex"), 0);
	bind_tex(0, src);
	fullscreen(prog);
}

static void game_frame(int f)
{
	GLuint prog = game.scene_prog;

	game_scene(f);

	/* The animated texture: new level 0 texels, regenerated mips. */
	pattern(game.texels, 64 * 64 * 4, f);
	bind_tex(1, game.diffuse);
	glTexSubImage2D(GL_TEXTURE_2D, 0, (f * 64) % DIFFUSE, 0, 64, 64,
			GL_RGBA, GL_UNSIGNED_BYTE, game.texels);
	glGenerateMipmap(GL_TEXTURE_2D);

	glEnable(GL_DEPTH_TEST);
	glDepthFunc(GL_LEQUAL);
	glEnable(GL_CULL_FACE);

	/* Shadow pass. */
	bind_target(game.shadow_fb, SHADOW, SHADOW);
	glClear(GL_DEPTH_BUFFER_BIT);
	glEnable(GL_POLYGON_OFFSET_FILL);
	glPolygonOffset(2.0f, 4.0f);
	glUseProgram(game.shadow_prog);
	game_draw_meshes(game.shadow_prog);
	glDisable(GL_POLYGON_OFFSET_FILL);

	/* Main pass; the stencil marks the lit geometry. */
	bind_target(game.hdr_fb, GAME_W, GAME_H);
	glClearColor(0.05f, 0.05f, 0.1f, 1.0f);
	glClearDepthf(1.0f);
	glClearStencil(0);
	glClear(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT |
		GL_STENCIL_BUFFER_BIT);
	glEnable(GL_STENCIL_TEST);
	glStencilFunc(GL_ALWAYS, 1, 0xff);
	glStencilOp(GL_KEEP, GL_KEEP, GL_REPLACE);
	glUseProgram(prog);
	glUniform1i(glGetUniformLocation(prog, "u_shadow"), 0);
	glUniform1i(glGetUniformLocation(prog, "u_diffuse"), 1);
	glUniform3f(glGetUniformLocation(prog, "u_light"),
		    -8.0f / 15.1f, -12.0f / 15.1f, -4.0f / 15.1f);
	bind_tex(0, game.shadow_tex);
	game_draw_meshes(prog);
	glDisable(GL_STENCIL_TEST);
	glDisable(GL_CULL_FACE);
	glDisable(GL_DEPTH_TEST);

	/* Post-processing: bloom at half resolution, then tonemap. */
	game_post(game.bright, game.hdr_tex, game.half_fb[0],
		  GAME_W / 2, GAME_H / 2);
	glUseProgram(game.blur);
	glUniform2f(glGetUniformLocation(game.blur, "u_step"),
		    2.0f / GAME_W, 0.0f);
	game_post(game.blur, game.half_tex[0], game.half_fb[1],
		  GAME_W / 2, GAME_H / 2);
	glUniform2f(glGetUniformLocation(game.blur, "u_step"),
		    0.0f, 2.0f / GAME_H);
	game_post(game.blur, game.half_tex[1], game.half_fb[0],
		  GAME_W / 2, GAME_H / 2);
	glUseProgram(game.tonemap);
	glUniform1i(glGetUniformLocation(game.tonemap, "u_bloom"), 1);
	bind_tex(1, game.half_tex[0]);
	game_post(game.tonemap, game.hdr_tex, game.ldr_fb, GAME_W, GAME_H);
}

static void game_teardown(void)
{
	GLuint fbs[] = { game.shadow_fb, game.hdr_fb, game.half_fb[0],
			 game.half_fb[1], game.ldr_fb };
	GLuint texs[] = { game.shadow_tex, game.hdr_tex, game.half_tex[0],
			  game.half_tex[1], game.ldr_tex, game.diffuse };
	GLuint bufs[] = { game.vbo[0], game.vbo[1], game.ibo, game.ubo };
	GLuint progs[] = { game.shadow_prog, game.scene_prog, game.bright,
			   game.blur, game.tonemap };
	size_t i;

	glDeleteFramebuffers(ARRAY_SIZE(fbs), fbs);
	glDeleteRenderbuffers(1, &game.ds_rb);
	glDeleteTextures(ARRAY_SIZE(texs), texs);
	glDeleteVertexArrays(2, game.vao);
	glDeleteBuffers(ARRAY_SIZE(bufs), bufs);
	for (i = 0; i < ARRAY_SIZE(progs); i++)
		glDeleteProgram(progs[i]);
	free(game.texels);
}

/* ---- compute ---- */

#define NDATA		65536
#define IMG		512
#define NBUCKETS	16

static const char *fill_cs =
	"layout(local_size_x = 64) in;\n"
	"layout(std430, binding = 0) buffer Data { float v[]; };\n"
	"uniform uint u_frame;\n"
	"void main() {\n"
	"	uint i = gl_GlobalInvocationID.x;\n"
	"	v[i] = 0.5 + 0.5 * sin(float(i) * 0.001 + float(u_frame));\n"
	"}\n";

static const char *image_cs =
	"layout(local_size_x = 8, local_size_y = 8) in;\n"
	"layout(std430, binding = 0) readonly buffer Data { float v[]; };\n"
	"layout(rgba8, binding = 0) writeonly uniform highp image2D u_img;\n"
	"layout(r32f, binding = 1) writeonly uniform highp image2D u_val;\n"
	"void main() {\n"
	"	ivec2 p = ivec2(gl_GlobalInvocationID.xy);\n"
	"	float x = v[(p.y * 512 + p.x) % v.length()];\n"
	"	imageStore(u_img, p, vec4(x, 1.0 - x, 0.5, 1.0));\n"
	"	imageStore(u_val, p, vec4(x * 2.0));\n"
	"}\n";

static const char *count_cs =
	"layout(local_size_x = 64) in;\n"
	"layout(std430, binding = 0) readonly buffer Data { float v[]; };\n"
	"layout(std430, binding = 1) buffer Count {\n"
	"	uint above;\n"
	"	uint hist[16];\n"
	"};\n"
	"void main() {\n"
	"	float x = v[gl_GlobalInvocationID.x];\n"
	"	if (x > 0.5)\n"
	"		atomicAdd(above, 1u);\n"
	"	atomicAdd(hist[uint(clamp(x, 0.0, 0.999) * 16.0)], 1u);\n"
	"}\n";

static struct {
	GLuint fill, image, count;
	GLuint data, counter, indirect;
	GLuint img, val;
} comp;

static void compute_setup(void)
{
	GLuint groups[3] = { NDATA / 64 / 2, 1, 1 };

	comp.fill = compute_program(fill_cs);
	comp.image = compute_program(image_cs);
	comp.count = compute_program(count_cs);
	comp.data = buffer(GL_SHADER_STORAGE_BUFFER, NDATA * sizeof(float),
			   NULL, GL_DYNAMIC_COPY);
	comp.counter = buffer(GL_SHADER_STORAGE_BUFFER,
			      (1 + NBUCKETS) * sizeof(GLuint), NULL,
			      GL_DYNAMIC_COPY);
	comp.indirect = buffer(GL_DISPATCH_INDIRECT_BUFFER, sizeof(groups),
			       groups, GL_STATIC_DRAW);
	comp.img = texture(GL_RGBA8, IMG, IMG, 1, GL_NEAREST);
	comp.val = texture(GL_R32F, IMG, IMG, 1, GL_NEAREST);
}

static void compute_frame(int f)
{
	GLuint zero[1 + NBUCKETS] = { 0 };

	glBindBufferBase(GL_SHADER_STORAGE_BUFFER, 0, comp.data);
	glBindBufferBase(GL_SHADER_STORAGE_BUFFER, 1, comp.counter);
	glBufferSubData(GL_SHADER_STORAGE_BUFFER, 0, sizeof(zero), zero);
	glBindImageTexture(0, comp.img, 0, GL_FALSE, 0, GL_WRITE_ONLY,
			   GL_RGBA8);
	glBindImageTexture(1, comp.val, 0, GL_FALSE, 0, GL_WRITE_ONLY,
			   GL_R32F);

	glUseProgram(comp.fill);
	glUniform1ui(glGetUniformLocation(comp.fill, "u_frame"), f);
	glDispatchCompute(NDATA / 64, 1, 1);
	glMemoryBarrier(GL_SHADER_STORAGE_BARRIER_BIT);

	glUseProgram(comp.image);
	glDispatchCompute(IMG / 8, IMG / 8, 1);
	glMemoryBarrier(GL_SHADER_IMAGE_ACCESS_BARRIER_BIT |
			GL_TEXTURE_FETCH_BARRIER_BIT);

	glUseProgram(comp.count);
	glDispatchCompute(NDATA / 64, 1, 1);
	glMemoryBarrier(GL_SHADER_STORAGE_BARRIER_BIT);

	/* A second pass over the first half, its size from a buffer. */
	glBindBuffer(GL_DISPATCH_INDIRECT_BUFFER, comp.indirect);
	glDispatchComputeIndirect(0);
	glMemoryBarrier(GL_SHADER_STORAGE_BARRIER_BIT |
			GL_BUFFER_UPDATE_BARRIER_BIT);

	/* The next frame's fill sees this frame's image written. */
	glUseProgram(comp.fill);
	glUniform1ui(glGetUniformLocation(comp.fill, "u_frame"), f + 100);
	glDispatchCompute(NDATA / 64, 1, 1);
	glMemoryBarrier(GL_ALL_BARRIER_BITS);
}

static void compute_teardown(void)
{
	GLuint bufs[] = { comp.data, comp.counter, comp.indirect };
	GLuint texs[] = { comp.img, comp.val };

	glDeleteBuffers(ARRAY_SIZE(bufs), bufs);
	glDeleteTextures(ARRAY_SIZE(texs), texs);
	glDeleteProgram(comp.fill);
	glDeleteProgram(comp.image);
	glDeleteProgram(comp.count);
}

/* ---- video ---- */

#define VID_W		1280
#define VID_H		720
#define OUT_W		1920
#define OUT_H		1080
#define THUMB		256

static const char *yuv_fs =
	"uniform sampler2D u_y;\n"
	"uniform sampler2D u_uv;\n"
	"in vec2 v_uv;\n"
	"layout(location = 0) out vec4 o;\n"
	"void main() {\n"
	"	float y = texture(u_y, v_uv).r;\n"
	"	vec2 c = texture(u_uv, v_uv).rg - 0.5;\n"
	"	o = vec4(y + 1.402 * c.y, y - 0.344 * c.x - 0.714 * c.y,\n"
	"		 y + 1.772 * c.x, 1.0);\n"
	"}\n";

static struct {
	GLuint yuv;
	GLuint y, uv, pbo;
	GLuint rgb_tex, rgb_fb, out_rb, out_fb, thumb;
	unsigned char *plane;
} vid;

static void video_setup(void)
{
	vid.yuv = program(quad_vs, yuv_fs);
	vid.y = texture(GL_R8, VID_W, VID_H, 1, GL_LINEAR);
	vid.uv = texture(GL_RG8, VID_W / 2, VID_H / 2, 1, GL_LINEAR);
	vid.pbo = buffer(GL_PIXEL_UNPACK_BUFFER, VID_W * VID_H / 2, NULL,
			 GL_STREAM_DRAW);
	glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
	vid.rgb_tex = texture(GL_RGBA8, VID_W, VID_H, 1, GL_LINEAR);
	vid.rgb_fb = make_fb(vid.rgb_tex, 0, 0, 0);
	vid.out_rb = renderbuffer(GL_RGBA8, OUT_W, OUT_H);
	vid.out_fb = make_fb(0, vid.out_rb, 0, 0);
	vid.thumb = texture(GL_RGBA8, THUMB, THUMB, 1, GL_LINEAR);
	vid.plane = malloc(VID_W * VID_H);
	if (!vid.plane)
		die("out of memory");
	glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
}

static void video_frame(int f)
{
	/* The decoder's output: Y from client memory, UV through a PBO. */
	pattern(vid.plane, VID_W * VID_H, f);
	bind_tex(0, vid.y);
	glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, VID_W, VID_H, GL_RED,
			GL_UNSIGNED_BYTE, vid.plane);
	pattern(vid.plane, VID_W * VID_H / 2, f + 50);
	glBindBuffer(GL_PIXEL_UNPACK_BUFFER, vid.pbo);
	glBufferData(GL_PIXEL_UNPACK_BUFFER, VID_W * VID_H / 2, vid.plane,
		     GL_STREAM_DRAW);
	bind_tex(1, vid.uv);
	glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, VID_W / 2, VID_H / 2, GL_RG,
			GL_UNSIGNED_BYTE, NULL);
	glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);

	/* Colour conversion. */
	bind_target(vid.rgb_fb, VID_W, VID_H);
	glUseProgram(vid.yuv);
	glUniform1i(glGetUniformLocation(vid.yuv, "u_y"), 0);
	glUniform1i(glGetUniformLocation(vid.yuv, "u_uv"), 1);
	fullscreen(vid.yuv);

	/* Scale to the output size. */
	glBindFramebuffer(GL_READ_FRAMEBUFFER, vid.rgb_fb);
	glBindFramebuffer(GL_DRAW_FRAMEBUFFER, vid.out_fb);
	glBlitFramebuffer(0, 0, VID_W, VID_H, 0, 0, OUT_W, OUT_H,
			  GL_COLOR_BUFFER_BIT, GL_LINEAR);

	/* A thumbnail of a region of the frame. */
	copy_image(vid.rgb_tex, GL_TEXTURE_2D, 0, 64 + f * 8, 32, 0,
		   vid.thumb, GL_TEXTURE_2D, 0, 0, 0, 0, THUMB, THUMB, 1);
}

static void video_teardown(void)
{
	GLuint texs[] = { vid.y, vid.uv, vid.rgb_tex, vid.thumb };
	GLuint fbs[] = { vid.rgb_fb, vid.out_fb };

	glDeleteFramebuffers(ARRAY_SIZE(fbs), fbs);
	glDeleteRenderbuffers(1, &vid.out_rb);
	glDeleteTextures(ARRAY_SIZE(texs), texs);
	glDeleteBuffers(1, &vid.pbo);
	glDeleteProgram(vid.yuv);
	free(vid.plane);
	glPixelStorei(GL_UNPACK_ALIGNMENT, 4);
}

/* ---- driver ---- */

static const struct workload {
	const char *name;
	void (*setup)(void);
	void (*frame)(int f);
	void (*teardown)(void);
} workloads[] = {
	{ "desktop", desktop_setup, desktop_frame, desktop_teardown },
	{ "game", game_setup, game_frame, game_teardown },
	{ "compute", compute_setup, compute_frame, compute_teardown },
	{ "video", video_setup, video_frame, video_teardown },
};

static const char *renderer;

static int run(const struct workload *w, int frames)
{
	char where[64];
	int ok = 1;
	int f;

	/* The setup's uploads go in an execbuffer of their own. */
	w->setup();
	glFlush();
	ok &= gl_ok(w->name);
	for (f = 0; f < frames; f++) {
		w->frame(f);
		glFlush();
		snprintf(where, sizeof(where), "%s frame %d", w->name, f);
		ok &= gl_ok(where);
	}
	glFinish();
	w->teardown();
	glBindFramebuffer(GL_FRAMEBUFFER, 0);
	glUseProgram(0);
	ok &= gl_ok(w->name);
	printf("gmig-gl: %s: %d frames on %s\n", w->name, frames, renderer);
	fflush(stdout);
	return ok;
}

static int has_ext(const char *list, const char *ext)
{
	size_t n = strlen(ext);
	const char *p = list;

	while (list && (p = strstr(p, ext))) {
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return 1;
		p += n;
	}
	return 0;
}

static void egl_init(void)
{
	static const EGLint attribs[] = {
		EGL_CONTEXT_MAJOR_VERSION, 3,
		EGL_CONTEXT_MINOR_VERSION, 1,
		EGL_NONE
	};
	PFNEGLGETPLATFORMDISPLAYEXTPROC get_display;
	const char *exts;
	EGLDisplay dpy;
	EGLContext ctx;

	exts = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
	if (!has_ext(exts, "EGL_MESA_platform_surfaceless"))
		die("no EGL_MESA_platform_surfaceless");
	get_display = (PFNEGLGETPLATFORMDISPLAYEXTPROC)
		eglGetProcAddress("eglGetPlatformDisplayEXT");
	if (!get_display)
		die("no eglGetPlatformDisplayEXT");
	dpy = get_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY,
			  NULL);
	if (dpy == EGL_NO_DISPLAY || !eglInitialize(dpy, NULL, NULL))
		die("cannot initialize the surfaceless EGL display");
	exts = eglQueryString(dpy, EGL_EXTENSIONS);
	if (!has_ext(exts, "EGL_KHR_no_config_context") ||
	    !has_ext(exts, "EGL_KHR_surfaceless_context"))
		die("no EGL_KHR_no_config_context/surfaceless_context");
	if (!eglBindAPI(EGL_OPENGL_ES_API))
		die("cannot bind OpenGL ES");
	ctx = eglCreateContext(dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT,
			       attribs);
	if (ctx == EGL_NO_CONTEXT)
		die("cannot create an OpenGL ES 3.1 context");
	if (!eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx))
		die("cannot make the context current");

	renderer = (const char *)glGetString(GL_RENDERER);
	exts = (const char *)glGetString(GL_EXTENSIONS);
	has_float_rt = has_ext(exts, "GL_EXT_color_buffer_float");
	copy_image = (copy_image_fn)eglGetProcAddress("glCopyImageSubData");
	if (!has_ext(exts, "GL_EXT_copy_image") &&
	    strncmp((const char *)glGetString(GL_VERSION),
		    "OpenGL ES 3.2", 13))
		copy_image = NULL;
	if (!copy_image)
		die("no glCopyImageSubData (GLES 3.2 or EXT_copy_image)");
}

static void print_usage(void)
{
	size_t i;

	fprintf(stderr, "usage: gmig-gl WORKLOAD [FRAMES]\nWORKLOAD:");
	for (i = 0; i < ARRAY_SIZE(workloads); i++)
		fprintf(stderr, " %s", workloads[i].name);
	fprintf(stderr, " all\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int frames = 3;
	int ok = 1, found = 0;
	size_t i;

	if (argc < 2 || argc > 3)
		print_usage();
	if (argc == 3) {
		char *end;

		frames = strtol(argv[2], &end, 10);
		if (*end || frames < 1)
			print_usage();
	}
	for (i = 0; i < ARRAY_SIZE(workloads); i++)
		found |= !strcmp(argv[1], workloads[i].name);
	if (!found && strcmp(argv[1], "all"))
		print_usage();

	egl_init();
	for (i = 0; i < ARRAY_SIZE(workloads); i++)
		if (!strcmp(argv[1], "all") ||
		    !strcmp(argv[1], workloads[i].name))
			ok &= run(&workloads[i], frames);
	if (!strcmp(argv[1], "all"))
		printf("gmig-gl: all: %d frames on %s\n",
		       frames * (int)ARRAY_SIZE(workloads), renderer);
	glFinish();
	return ok ? 0 : 1;
}
