/* k_layout.c: KX's k.h as the C compiler sees it for this target (struct k0's size and
 * field offsets, the type codes, nulls, whether char is signed), compared entry by entry
 * with src/ffi/qapi.rs compiled by rustc for the same target (layout.rs, linked in).
 * Prints every entry; exits 1 on any difference. */
#include <stddef.h>
#include <stdio.h>
#include "k.h"

extern const long long QAPI_LAYOUT[45];

int main(void) {
    static const char *names[45] = {
        "sizeof(struct k0)", "alignof(struct k0)", "sizeof(K)",
        "offsetof(m)", "offsetof(a)", "offsetof(t)", "offsetof(u)", "offsetof(r)",
        "offsetof(union: g h i j e f s k)", "offsetof(n)", "offsetof(G0)",
        "sizeof(U)", "sizeof(short)", "sizeof(int)", "sizeof(long long)", "sizeof(float)",
        "sizeof(double)", "sizeof(char*)", "char is signed",
        "KB", "UU", "KG", "KH", "KI", "KJ", "KE", "KF", "KC", "KS", "KP", "KM", "KD", "KZ",
        "KN", "KU", "KV", "KT", "XT", "XD", "nh", "wh", "ni", "wi", "nj", "wj",
    };
    const long long c[45] = {
        sizeof(struct k0), _Alignof(struct k0), sizeof(K),
        offsetof(struct k0, m), offsetof(struct k0, a), offsetof(struct k0, t),
        offsetof(struct k0, u), offsetof(struct k0, r),
        offsetof(struct k0, g), offsetof(struct k0, n), offsetof(struct k0, G0),
        sizeof(U), sizeof(short), sizeof(int), sizeof(long long), sizeof(float),
        sizeof(double), sizeof(char *), (char)-1 < 0,
        KB, UU, KG, KH, KI, KJ, KE, KF, KC, KS, KP, KM, KD, KZ, KN, KU, KV, KT, XT, XD,
        nh, wh, ni, wi, nj, wj,
    };
    int bad = 0;
    for (int i = 0; i < 45; i++) {
        int same = c[i] == QAPI_LAYOUT[i];
        bad |= !same;
        printf("%-34s k.h %-22lld qapi.rs %-22lld %s\n", names[i], c[i], QAPI_LAYOUT[i], same ? "ok" : "DIFFERENT");
    }
    /* offsets inside the union must agree for every member k.h has */
    if (offsetof(struct k0, g) != offsetof(struct k0, j) || offsetof(struct k0, j) != offsetof(struct k0, s)
        || offsetof(struct k0, s) != offsetof(struct k0, k) || offsetof(struct k0, n) != offsetof(struct k0, j)) {
        printf("k.h's union members do not share an offset\n");
        bad = 1;
    }
    return bad;
}
