/* dp_exact.c - exp(-γ) in double with a bounded error, and in multi-limb fixed point with a
 * proven error bound in units of the last place (see dp_exact.h, docs/privacy.md). */
#include <sodium.h>
#include <string.h>

#include "dp_exact.h"

#ifdef __clang__ /* the fast path's rounding must not depend on the compiler (GCC's -std=c11 is    \
                    off) */
#pragma STDC FP_CONTRACT OFF
#endif

static const double exp_int[65] = {
    /* e^-k, k = 0..64, correctly rounded */
    0x1.0000000000000p+0,  0x1.78b56362cef38p-2,  0x1.152aaa3bf81ccp-3,  0x1.97db0ccceb0afp-5,
    0x1.2c155b8213cf4p-6,  0x1.b993fe00d5376p-8,  0x1.44e51f113d4d6p-9,  0x1.de16b9c24a98fp-11,
    0x1.5fc21041027adp-12, 0x1.02cf22526545ap-13, 0x1.7cd79b5647c9bp-15, 0x1.18354238f6764p-16,
    0x1.9c54c3b43bc8bp-18, 0x1.2f6053b981d98p-19, 0x1.be6c6fdb01612p-21, 0x1.4875ca227ec38p-22,
    0x1.e355bbaee85cbp-24, 0x1.639e3175a689dp-25, 0x1.05a628c699fa1p-26, 0x1.81056ff2c5772p-28,
    0x1.1b48655f37267p-29, 0x1.a0db0d0ddb3ecp-31, 0x1.32b48bf117da2p-32, 0x1.c3527e433fab1p-34,
    0x1.4c1078fe9228ap-35, 0x1.e8a37a45fc32ep-37, 0x1.67852a7007e42p-38, 0x1.0885298767e9ap-39,
    0x1.853f01d6d53bap-41, 0x1.1e642baeb84a0p-42, 0x1.a56e0c2ac7f75p-44, 0x1.36121e24d3bbap-45,
    0x1.c8464f7616468p-47, 0x1.4fb547c775da8p-48, 0x1.ee001eed62aa0p-50, 0x1.6b7719a59f0e0p-51,
    0x1.0b6c3afdde064p-52, 0x1.898471fca6055p-54, 0x1.2188ad6ae3303p-55, 0x1.aa0de4bf35b38p-57,
    0x1.39792499b1a24p-58, 0x1.cd480a1b74820p-60, 0x1.536452ee2f75cp-61, 0x1.f36bd37f42f3ep-63,
    0x1.6f741de1748ecp-64, 0x1.0e5b73d1ff53dp-65, 0x1.8dd5e1bb09d7ep-67, 0x1.24b6031b49bdap-68,
    0x1.aebabae3a41b5p-70, 0x1.3ce9b9de78f85p-71, 0x1.d257d547e083fp-73, 0x1.571db733a9d61p-74,
    0x1.f8e6c24b5592ep-76, 0x1.737c5645114b5p-77, 0x1.1152eaeb73c08p-78, 0x1.923372c67a074p-80,
    0x1.27ec458c65e3cp-81, 0x1.b374b315f87c1p-83, 0x1.4063f8cc8bb98p-84, 0x1.d775d87da854dp-86,
    0x1.5ae191a99585ap-87, 0x1.fe7116182e9ccp-89, 0x1.778fe2497184cp-90, 0x1.1452b7723aed2p-91,
    0x1.969d47321e4ccp-93,
};
static const double exp_64th[64] = {
    /* e^-(j/64), j = 0..63, correctly rounded */
    0x1.0000000000000p+0, 0x1.f80feabfeefa5p-1, 0x1.f03f56a88b5d8p-1, 0x1.e88dc6afecfc0p-1,
    0x1.e0fabfbc702a4p-1, 0x1.d985c89d041a3p-1, 0x1.d22e6a0197c03p-1, 0x1.caf42e73a4c7ep-1,
    0x1.c3d6a24ed8222p-1, 0x1.bcd553b9d7b62p-1, 0x1.b5efd29f24c26p-1, 0x1.af25b0a61a7b5p-1,
    0x1.a876812c0877cp-1, 0x1.a1e1d93d687d0p-1, 0x1.9b674f8f2f3d8p-1, 0x1.95067c78379f2p-1,
    0x1.8ebef9eac820bp-1, 0x1.8890636e31f54p-1, 0x1.827a561889716p-1, 0x1.7c7c70887763cp-1,
    0x1.769652df22f7ep-1, 0x1.70c79eba33c07p-1, 0x1.6b0ff72deb89dp-1, 0x1.656f00bf5796ap-1,
    0x1.5fe4615e98e8fp-1, 0x1.5a6fc061433c8p-1, 0x1.5510c67cd2591p-1, 0x1.4fc71dc135627p-1,
    0x1.4a9271936fd09p-1, 0x1.45726ea84fb88p-1, 0x1.4066c2ff39127p-1, 0x1.3b6f1ddd05a92p-1,
    0x1.368b2fc6f960ap-1, 0x1.31baaa7dca843p-1, 0x1.2cfd40f8bdcaep-1, 0x1.2852a760d5c59p-1,
    0x1.23ba930c1568bp-1, 0x1.1f34ba78d5666p-1, 0x1.1ac0d5492c0dcp-1, 0x1.165e9c3e67663p-1,
    0x1.120dc934993e8p-1, 0x1.0dce171e34e7fp-1, 0x1.099f41ffbe580p-1, 0x1.058106eb8a6aap-1,
    0x1.017323fd90020p-1, 0x1.faeab0ae9381dp-2, 0x1.f30ec8375038bp-2, 0x1.eb5210d6270b7p-2,
    0x1.e3b40ebefcd7ep-2, 0x1.dc3448110daaep-2, 0x1.d4d244cf4ea9ep-2, 0x1.cd8d8ed8ee386p-2,
    0x1.c665b1e1f1e0dp-2, 0x1.bf5a3b6bf18b7p-2, 0x1.b86ababeef8dfp-2, 0x1.b196c0e24d229p-2,
    0x1.aadde095dad4bp-2, 0x1.a43fae4b0474ep-2, 0x1.9dbbc01e18268p-2, 0x1.9751adcfa81c1p-2,
    0x1.910110be06976p-2, 0x1.8ac983dedbc65p-2, 0x1.84aaa3b8d514ep-2, 0x1.7ea40e5d6d8fap-2,
};

static const double log_tab[128] = {
    /* ln(1 + i/128), correctly rounded */
    0x0.0p+0,
    0x1.fe02a6b106789p-8,
    0x1.fc0a8b0fc03e4p-7,
    0x1.7b91b07d5b11bp-6,
    0x1.f829b0e783300p-6,
    0x1.39e87b9febd60p-5,
    0x1.77458f632dcfcp-5,
    0x1.b42dd711971bfp-5,
    0x1.f0a30c01162a6p-5,
    0x1.16536eea37ae1p-4,
    0x1.341d7961bd1d1p-4,
    0x1.51b073f06183fp-4,
    0x1.6f0d28ae56b4cp-4,
    0x1.8c345d6319b21p-4,
    0x1.a926d3a4ad563p-4,
    0x1.c5e548f5bc743p-4,
    0x1.e27076e2af2e6p-4,
    0x1.fec9131dbeabbp-4,
    0x1.0d77e7cd08e59p-3,
    0x1.1b72ad52f67a0p-3,
    0x1.29552f81ff523p-3,
    0x1.371fc201e8f74p-3,
    0x1.44d2b6ccb7d1ep-3,
    0x1.526e5e3a1b438p-3,
    0x1.5ff3070a793d4p-3,
    0x1.6d60fe719d21dp-3,
    0x1.7ab890210d909p-3,
    0x1.87fa06520c911p-3,
    0x1.9525a9cf456b4p-3,
    0x1.a23bc1fe2b563p-3,
    0x1.af3c94e80bff3p-3,
    0x1.bc286742d8cd6p-3,
    0x1.c8ff7c79a9a22p-3,
    0x1.d5c216b4fbb91p-3,
    0x1.e27076e2af2e6p-3,
    0x1.ef0adcbdc5936p-3,
    0x1.fb9186d5e3e2bp-3,
    0x1.0402594b4d041p-2,
    0x1.0a324e27390e3p-2,
    0x1.1058bf9ae4ad5p-2,
    0x1.1675cababa60ep-2,
    0x1.1c898c16999fbp-2,
    0x1.22941fbcf7966p-2,
    0x1.2895a13de86a3p-2,
    0x1.2e8e2bae11d31p-2,
    0x1.347dd9a987d55p-2,
    0x1.3a64c556945eap-2,
    0x1.404308686a7e4p-2,
    0x1.4618bc21c5ec2p-2,
    0x1.4be5f957778a1p-2,
    0x1.51aad872df82dp-2,
    0x1.5767717455a6cp-2,
    0x1.5d1bdbf5809cap-2,
    0x1.62c82f2b9c795p-2,
    0x1.686c81e9b14afp-2,
    0x1.6e08eaa2ba1e4p-2,
    0x1.739d7f6bbd007p-2,
    0x1.792a55fdd47a2p-2,
    0x1.7eaf83b82afc3p-2,
    0x1.842d1da1e8b17p-2,
    0x1.89a3386c1425bp-2,
    0x1.8f11e873662c7p-2,
    0x1.947941c2116fbp-2,
    0x1.99d958117e08bp-2,
    0x1.9f323ecbf984cp-2,
    0x1.a484090e5bb0ap-2,
    0x1.a9cec9a9a084ap-2,
    0x1.af1293247786bp-2,
    0x1.b44f77bcc8f63p-2,
    0x1.b9858969310fbp-2,
    0x1.beb4d9da71b7cp-2,
    0x1.c3dd7a7cdad4dp-2,
    0x1.c8ff7c79a9a22p-2,
    0x1.ce1af0b85f3ebp-2,
    0x1.d32fe7e00ebd5p-2,
    0x1.d83e7258a2f3ep-2,
    0x1.dd46a04c1c4a1p-2,
    0x1.e24881a7c6c26p-2,
    0x1.e744261d68788p-2,
    0x1.ec399d2468cc0p-2,
    0x1.f128f5faf06edp-2,
    0x1.f6123fa7028acp-2,
    0x1.faf588f78f31fp-2,
    0x1.ffd2e0857f498p-2,
    0x1.02552a5a5d0ffp-1,
    0x1.04bdf9da926d2p-1,
    0x1.0723e5c1cdf40p-1,
    0x1.0986f4f573521p-1,
    0x1.0be72e4252a83p-1,
    0x1.0e44985d1cc8cp-1,
    0x1.109f39e2d4c97p-1,
    0x1.12f719593efbcp-1,
    0x1.154c3d2f4d5eap-1,
    0x1.179eabbd899a1p-1,
    0x1.19ee6b467c96fp-1,
    0x1.1c3b81f713c25p-1,
    0x1.1e85f5e7040d0p-1,
    0x1.20cdcd192ab6ep-1,
    0x1.23130d7bebf43p-1,
    0x1.2555bce98f7cbp-1,
    0x1.2795e1289b11bp-1,
    0x1.29d37fec2b08bp-1,
    0x1.2c0e9ed448e8cp-1,
    0x1.2e47436e40268p-1,
    0x1.307d7334f10bep-1,
    0x1.32b1339121d71p-1,
    0x1.34e289d9ce1d3p-1,
    0x1.37117b54747b6p-1,
    0x1.393e0d3562a1ap-1,
    0x1.3b68449fffc23p-1,
    0x1.3d9026a7156fbp-1,
    0x1.3fb5b84d16f42p-1,
    0x1.41d8fe84672aep-1,
    0x1.43f9fe2f9ce67p-1,
    0x1.4618bc21c5ec2p-1,
    0x1.48353d1ea88dfp-1,
    0x1.4a4f85db03ebbp-1,
    0x1.4c679afccee3ap-1,
    0x1.4e7d811b75bb1p-1,
    0x1.50913cc01686bp-1,
    0x1.52a2d265bc5abp-1,
    0x1.54b2467999498p-1,
    0x1.56bf9d5b3f399p-1,
    0x1.58cadb5cd7989p-1,
    0x1.5ad404c359f2dp-1,
    0x1.5cdb1dc6c1765p-1,
    0x1.5ee02a9241675p-1,
    0x1.60e32f44788d9p-1,
};
static const double inv_tab[128] = {
    /* 1/(1 + i/128), correctly rounded */
    0x1.0000000000000p+0, 0x1.fc07f01fc07f0p-1, 0x1.f81f81f81f820p-1, 0x1.f44659e4a4271p-1,
    0x1.f07c1f07c1f08p-1, 0x1.ecc07b301ecc0p-1, 0x1.e9131abf0b767p-1, 0x1.e573ac901e574p-1,
    0x1.e1e1e1e1e1e1ep-1, 0x1.de5d6e3f8868ap-1, 0x1.dae6076b981dbp-1, 0x1.d77b654b82c34p-1,
    0x1.d41d41d41d41dp-1, 0x1.d0cb58f6ec074p-1, 0x1.cd85689039b0bp-1, 0x1.ca4b3055ee191p-1,
    0x1.c71c71c71c71cp-1, 0x1.c3f8f01c3f8f0p-1, 0x1.c0e070381c0e0p-1, 0x1.bdd2b899406f7p-1,
    0x1.bacf914c1bad0p-1, 0x1.b7d6c3dda338bp-1, 0x1.b4e81b4e81b4fp-1, 0x1.b2036406c80d9p-1,
    0x1.af286bca1af28p-1, 0x1.ac5701ac5701bp-1, 0x1.a98ef606a63bep-1, 0x1.a6d01a6d01a6dp-1,
    0x1.a41a41a41a41ap-1, 0x1.a16d3f97a4b02p-1, 0x1.9ec8e951033d9p-1, 0x1.9c2d14ee4a102p-1,
    0x1.999999999999ap-1, 0x1.970e4f80cb872p-1, 0x1.948b0fcd6e9e0p-1, 0x1.920fb49d0e229p-1,
    0x1.8f9c18f9c18fap-1, 0x1.8d3018d3018d3p-1, 0x1.8acb90f6bf3aap-1, 0x1.886e5f0abb04ap-1,
    0x1.8618618618618p-1, 0x1.83c977ab2beddp-1, 0x1.8181818181818p-1, 0x1.7f405fd017f40p-1,
    0x1.7d05f417d05f4p-1, 0x1.7ad2208e0ecc3p-1, 0x1.78a4c8178a4c8p-1, 0x1.767dce434a9b1p-1,
    0x1.745d1745d1746p-1, 0x1.724287f46debcp-1, 0x1.702e05c0b8170p-1, 0x1.6e1f76b4337c7p-1,
    0x1.6c16c16c16c17p-1, 0x1.6a13cd1537290p-1, 0x1.6816816816817p-1, 0x1.661ec6a5122f9p-1,
    0x1.642c8590b2164p-1, 0x1.623fa77016240p-1, 0x1.6058160581606p-1, 0x1.5e75bb8d015e7p-1,
    0x1.5c9882b931057p-1, 0x1.5ac056b015ac0p-1, 0x1.58ed2308158edp-1, 0x1.571ed3c506b3ap-1,
    0x1.5555555555555p-1, 0x1.5390948f40febp-1, 0x1.51d07eae2f815p-1, 0x1.5015015015015p-1,
    0x1.4e5e0a72f0539p-1, 0x1.4cab88725af6ep-1, 0x1.4afd6a052bf5bp-1, 0x1.49539e3b2d067p-1,
    0x1.47ae147ae147bp-1, 0x1.460cbc7f5cf9ap-1, 0x1.446f86562d9fbp-1, 0x1.42d6625d51f87p-1,
    0x1.4141414141414p-1, 0x1.3fb013fb013fbp-1, 0x1.3e22cbce4a902p-1, 0x1.3c995a47babe7p-1,
    0x1.3b13b13b13b14p-1, 0x1.3991c2c187f63p-1, 0x1.3813813813814p-1, 0x1.3698df3de0748p-1,
    0x1.3521cfb2b78c1p-1, 0x1.33ae45b57bcb2p-1, 0x1.323e34a2b10bfp-1, 0x1.30d190130d190p-1,
    0x1.2f684bda12f68p-1, 0x1.2e025c04b8097p-1, 0x1.2c9fb4d812ca0p-1, 0x1.2b404ad012b40p-1,
    0x1.29e4129e4129ep-1, 0x1.288b01288b013p-1, 0x1.27350b8812735p-1, 0x1.25e22708092f1p-1,
    0x1.2492492492492p-1, 0x1.23456789abcdfp-1, 0x1.21fb78121fb78p-1, 0x1.20b470c67c0d9p-1,
    0x1.1f7047dc11f70p-1, 0x1.1e2ef3b3fb874p-1, 0x1.1cf06ada2811dp-1, 0x1.1bb4a4046ed29p-1,
    0x1.1a7b9611a7b96p-1, 0x1.19453808ca29cp-1, 0x1.1811811811812p-1, 0x1.16e0689427379p-1,
    0x1.15b1e5f75270dp-1, 0x1.1485f0e0acd3bp-1, 0x1.135c81135c811p-1, 0x1.12358e75d3033p-1,
    0x1.1111111111111p-1, 0x1.0fef010fef011p-1, 0x1.0ecf56be69c90p-1, 0x1.0db20a88f4696p-1,
    0x1.0c9714fbcda3bp-1, 0x1.0b7e6ec259dc8p-1, 0x1.0a6810a6810a7p-1, 0x1.0953f39010954p-1,
    0x1.0842108421084p-1, 0x1.073260a47f7c6p-1, 0x1.0624dd2f1a9fcp-1, 0x1.05197f7d73404p-1,
    0x1.0410410410410p-1, 0x1.03091b51f5e1ap-1, 0x1.0204081020408p-1, 0x1.0101010101010p-1,
};
#define LN2_HI 0x1.62e42fefa2000p-1  /* ln 2 to 40 bits: n · LN2_HI is exact for n <= 2^13 */
#define LN2_LO 0x1.9ef35793c7673p-41 /* ln 2 - LN2_HI, correctly rounded */

static const double pow2neg[32] = {
    0x1p-0,  0x1p-1,  0x1p-2,  0x1p-3,  0x1p-4,  0x1p-5,  0x1p-6,  0x1p-7,
    0x1p-8,  0x1p-9,  0x1p-10, 0x1p-11, 0x1p-12, 0x1p-13, 0x1p-14, 0x1p-15,
    0x1p-16, 0x1p-17, 0x1p-18, 0x1p-19, 0x1p-20, 0x1p-21, 0x1p-22, 0x1p-23,
    0x1p-24, 0x1p-25, 0x1p-26, 0x1p-27, 0x1p-28, 0x1p-29, 0x1p-30, 0x1p-31,
};

double dp_pow2neg(unsigned e)
{
    return pow2neg[e];
}

double dp_fnlog32(uint32_t u)
{
    unsigned e = 31u - (unsigned)__builtin_clz(u);               /* 2^e <= u < 2^(e+1) */
    double m = (double)u * pow2neg[e];                           /* exact, 1 <= m < 2 */
    unsigned i = (unsigned)((m - 1) * 128);                      /* exact */
    double z = (m - (1 + (double)i * (1.0 / 128))) * inv_tab[i]; /* (m - c_i)/c_i, 0 <= z < 2^-7 */
    double p =
        z *
        (1 + z * (-0.5 + z * (1.0 / 3 + z * (-0.25 + z * (0.2 + z * (-1.0 / 6 + z * (1.0 / 7)))))));
    double n = 32.0 - (double)e; /* -ln(u/2^32) = n ln 2 - ln(m) */
    return (n * LN2_HI - log_tab[i]) + (n * LN2_LO - p);
}

double dp_fexp(double x)
{
    double y = x * 64; /* exact */
    unsigned i = (unsigned)y;
    double r = (y - (double)i) * (1.0 / 64); /* exact (Sterbenz), 0 <= r < 1/64 */
    double p =
        1 +
        r * (-1 + r * (0.5 + r * (-1.0 / 6 + r * (1.0 / 24 + r * (-1.0 / 120 + r * (1.0 / 720))))));
    return exp_int[i >> 6] * exp_64th[i & 63] * p;
}

/* z = floor(x · y / 2^(64L)), all L+1 limbs; z may alias x or y; x · y < 2^(64L + 64). */
static void mp_mul(uint64_t *z, const uint64_t *x, const uint64_t *y, unsigned L)
{
    uint64_t t[2 * DP_MP_LIMBS_MAX + 2];
    memset(t, 0, sizeof(uint64_t) * (2 * L + 2));
    for (unsigned i = 0; i <= L; i++) {
        uint64_t carry = 0;
        for (unsigned j = 0; j <= L; j++) {
            dp_u128 p = (dp_u128)x[i] * y[j] + t[i + j] + carry;
            t[i + j] = (uint64_t)p;
            carry = (uint64_t)(p >> 64);
        }
        t[i + L + 1] = carry;
    }
    memcpy(z, t + L, sizeof(uint64_t) * (L + 1));
    sodium_memzero(t, sizeof(uint64_t) * (2 * L + 2)); /* γ depends on the secret draw */
}

/* x = floor(x / k), k >= 1. */
static void mp_div_small(uint64_t *x, uint64_t k, unsigned L)
{
    uint64_t rem = 0;
    for (unsigned i = L + 1; i-- > 0;) {
        dp_u128 cur = ((dp_u128)rem << 64) | x[i];
        x[i] = (uint64_t)(cur / k);
        rem = (uint64_t)(cur % k);
    }
}

static void mp_add(uint64_t *a, const uint64_t *b, unsigned L)
{
    uint64_t carry = 0;
    for (unsigned i = 0; i <= L; i++) {
        dp_u128 s = (dp_u128)a[i] + b[i] + carry;
        a[i] = (uint64_t)s;
        carry = (uint64_t)(s >> 64);
    }
}

/* a -= b, a >= b. */
static void mp_sub(uint64_t *a, const uint64_t *b, unsigned L)
{
    uint64_t borrow = 0;
    for (unsigned i = 0; i <= L; i++) {
        uint64_t bi = b[i] + borrow;
        uint64_t nb = (bi < borrow) | (a[i] < bi);
        a[i] -= bi;
        borrow = nb;
    }
}

static int mp_is_zero(const uint64_t *a, unsigned L)
{
    for (unsigned i = 0; i <= L; i++)
        if (a[i])
            return 0;
    return 1;
}

int dp_mp_cmp(const uint64_t *a, const uint64_t *b, unsigned L)
{
    for (unsigned i = L + 1; i-- > 0;)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

void dp_mp_add_small(uint64_t *a, uint64_t k, unsigned L)
{
    for (unsigned i = 0; i <= L && k; i++) {
        a[i] += k;
        k = a[i] < k;
    }
}

int dp_mp_sub_small(uint64_t *a, uint64_t k, unsigned L)
{
    uint64_t kk[DP_MP_LIMBS_MAX + 1] = {0};
    kk[0] = k;
    if (dp_mp_cmp(a, kk, L) < 0)
        return 0;
    mp_sub(a, kk, L);
    return 1;
}

/* out = floor(n / (d · 2^s) · 2^(64L)) for n <= d · 2^s (so the value is at most 1): the binary
 * expansion of n/d by long division, shifted right by s. */
static void mp_ratio(uint64_t *out, dp_u128 n, dp_u128 d, unsigned s, unsigned L)
{
    memset(out, 0, sizeof(uint64_t) * (L + 1));
    dp_u128 ip = n / d, r = n % d;
    unsigned top = 64 * L - s; /* bit position of 2^0 of n/d */
    for (unsigned b = 0; ip; b++, ip >>= 1)
        if (ip & 1)
            out[(top + b) / 64] |= 1ull << ((top + b) % 64);
    for (unsigned pos = top; pos-- > 0;) {
        r <<= 1; /* r < d < 2^100: no overflow */
        if (r >= d) {
            r -= d;
            out[pos / 64] |= 1ull << (pos % 64);
        }
    }
}

/* exp(-γ) = exp(-γ / 2^s)^(2^s), s the least with γ / 2^s <= 1: the Taylor series of
 * exp(-f), f <= 1, truncated where a term rounds to zero, then s squarings. Every step rounds
 * down; the bound E follows the error through (docs/privacy.md): f is below f's true value
 * by < 1 ulp, every term is within 4 ulps, the tail is within 4, a squaring maps E to 2E + 2. */
uint64_t dp_mp_exp(uint64_t *out, dp_u128 n, dp_u128 d, unsigned L)
{
    uint64_t f[DP_MP_LIMBS_MAX + 1], term[DP_MP_LIMBS_MAX + 1], neg[DP_MP_LIMBS_MAX + 1];
    unsigned s = 0;
    while (s < 6 && n > (d << s))
        s++;
    mp_ratio(f, n, d, s, L);
    memset(out, 0, sizeof(uint64_t) * (L + 1));
    memset(term, 0, sizeof(uint64_t) * (L + 1));
    memset(neg, 0, sizeof(uint64_t) * (L + 1));
    out[L] = term[L] = 1;
    uint64_t terms = 0;
    for (uint64_t i = 1;; i++) {
        mp_mul(term, term, f, L);
        mp_div_small(term, i, L);
        if (mp_is_zero(term, L))
            break;
        mp_add(i & 1 ? neg : out, term, L);
        terms++;
    }
    mp_sub(out, neg, L);
    uint64_t e = 4 * terms + 4;
    for (unsigned k = 0; k < s; k++) {
        mp_mul(out, out, out, L);
        e = 2 * e + 2;
    }
    sodium_memzero(f, sizeof f);
    sodium_memzero(term, sizeof term);
    sodium_memzero(neg, sizeof neg);
    return e;
}
