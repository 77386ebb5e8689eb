/* mac_stats register block: generated from its description; do not edit. */
#ifndef AMNIC_MAC_STATS_H
#define AMNIC_MAC_STATS_H

#define AMNIC_MAC_STATS_TYPE_ID_VALUE                    0x4D535441u
#define AMNIC_MAC_STATS_VERSION_VALUE                    0x00010000u
#define AMNIC_MAC_STATS_SIZE_VALUE                       0x800u

#define AMNIC_MAC_STATS_TYPE_ID_OFFSET                   0x000u  /* RO, 32 bit */
#define AMNIC_MAC_STATS_TYPE_ID_RESET                    0x4D535441u
#define AMNIC_MAC_STATS_VERSION_OFFSET                   0x004u  /* RO, 32 bit */
#define AMNIC_MAC_STATS_VERSION_RESET                    0x10000u
#define AMNIC_MAC_STATS_SIZE_OFFSET                      0x008u  /* RO, 32 bit */
#define AMNIC_MAC_STATS_SIZE_RESET                       0x800u
#define AMNIC_MAC_STATS_CONTROL_OFFSET                   0x010u  /* W1S, 32 bit */
#define AMNIC_MAC_STATS_CONTROL_RESET                    0x0u
#define AMNIC_MAC_STATS_CONTROL_CLEAR_SHIFT              0
#define AMNIC_MAC_STATS_CONTROL_CLEAR_MASK               0x1u
#define AMNIC_MAC_STATS_RX_STATUS_LOST_OFFSET            0x020u  /* RO, 32 bit */
#define AMNIC_MAC_STATS_RX_STATUS_LOST_RESET             0x0u
#define AMNIC_MAC_STATS_RX_FLOW_LOST_OFFSET              0x024u  /* RO, 32 bit */
#define AMNIC_MAC_STATS_RX_FLOW_LOST_RESET               0x0u
#define AMNIC_MAC_STATS_TX_STATUS_LOST_OFFSET            0x028u  /* RO, 32 bit */
#define AMNIC_MAC_STATS_TX_STATUS_LOST_RESET             0x0u
#define AMNIC_MAC_STATS_TX_FLOW_LOST_OFFSET              0x02Cu  /* RO, 32 bit */
#define AMNIC_MAC_STATS_TX_FLOW_LOST_RESET               0x0u
#define AMNIC_MAC_STATS_RX_FRAMES_GOOD_OFFSET            0x100u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_GOOD_HI_OFFSET         0x104u
#define AMNIC_MAC_STATS_RX_FRAMES_GOOD_RESET             0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_BAD_OFFSET             0x108u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_BAD_HI_OFFSET          0x10Cu
#define AMNIC_MAC_STATS_RX_FRAMES_BAD_RESET              0x0ull
#define AMNIC_MAC_STATS_RX_OCTETS_GOOD_OFFSET            0x110u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_OCTETS_GOOD_HI_OFFSET         0x114u
#define AMNIC_MAC_STATS_RX_OCTETS_GOOD_RESET             0x0ull
#define AMNIC_MAC_STATS_RX_OCTETS_BAD_OFFSET             0x118u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_OCTETS_BAD_HI_OFFSET          0x11Cu
#define AMNIC_MAC_STATS_RX_OCTETS_BAD_RESET              0x0ull
#define AMNIC_MAC_STATS_RX_FCS_ERRORS_OFFSET             0x120u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FCS_ERRORS_HI_OFFSET          0x124u
#define AMNIC_MAC_STATS_RX_FCS_ERRORS_RESET              0x0ull
#define AMNIC_MAC_STATS_RX_FRAMING_ERRORS_OFFSET         0x128u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMING_ERRORS_HI_OFFSET      0x12Cu
#define AMNIC_MAC_STATS_RX_FRAMING_ERRORS_RESET          0x0ull
#define AMNIC_MAC_STATS_RX_RUNTS_OFFSET                  0x130u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_RUNTS_HI_OFFSET               0x134u
#define AMNIC_MAC_STATS_RX_RUNTS_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_OVERSIZE_OFFSET               0x138u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_OVERSIZE_HI_OFFSET            0x13Cu
#define AMNIC_MAC_STATS_RX_OVERSIZE_RESET                0x0ull
#define AMNIC_MAC_STATS_RX_BROADCAST_OFFSET              0x140u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_BROADCAST_HI_OFFSET           0x144u
#define AMNIC_MAC_STATS_RX_BROADCAST_RESET               0x0ull
#define AMNIC_MAC_STATS_RX_MULTICAST_OFFSET              0x148u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_MULTICAST_HI_OFFSET           0x14Cu
#define AMNIC_MAC_STATS_RX_MULTICAST_RESET               0x0ull
#define AMNIC_MAC_STATS_RX_VLAN_OFFSET                   0x150u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_VLAN_HI_OFFSET                0x154u
#define AMNIC_MAC_STATS_RX_VLAN_RESET                    0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_64_OFFSET              0x158u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_64_HI_OFFSET           0x15Cu
#define AMNIC_MAC_STATS_RX_FRAMES_64_RESET               0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_65_127_OFFSET          0x160u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_65_127_HI_OFFSET       0x164u
#define AMNIC_MAC_STATS_RX_FRAMES_65_127_RESET           0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_128_255_OFFSET         0x168u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_128_255_HI_OFFSET      0x16Cu
#define AMNIC_MAC_STATS_RX_FRAMES_128_255_RESET          0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_256_511_OFFSET         0x170u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_256_511_HI_OFFSET      0x174u
#define AMNIC_MAC_STATS_RX_FRAMES_256_511_RESET          0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_512_1023_OFFSET        0x178u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_512_1023_HI_OFFSET     0x17Cu
#define AMNIC_MAC_STATS_RX_FRAMES_512_1023_RESET         0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_1024_1518_OFFSET       0x180u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_1024_1518_HI_OFFSET    0x184u
#define AMNIC_MAC_STATS_RX_FRAMES_1024_1518_RESET        0x0ull
#define AMNIC_MAC_STATS_RX_FRAMES_1519_MAX_OFFSET        0x188u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_FRAMES_1519_MAX_HI_OFFSET     0x18Cu
#define AMNIC_MAC_STATS_RX_FRAMES_1519_MAX_RESET         0x0ull
#define AMNIC_MAC_STATS_RX_PAUSE_OFFSET                  0x200u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PAUSE_HI_OFFSET               0x204u
#define AMNIC_MAC_STATS_RX_PAUSE_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_0_OFFSET                  0x208u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_0_HI_OFFSET               0x20Cu
#define AMNIC_MAC_STATS_RX_PFC_0_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_1_OFFSET                  0x210u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_1_HI_OFFSET               0x214u
#define AMNIC_MAC_STATS_RX_PFC_1_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_2_OFFSET                  0x218u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_2_HI_OFFSET               0x21Cu
#define AMNIC_MAC_STATS_RX_PFC_2_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_3_OFFSET                  0x220u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_3_HI_OFFSET               0x224u
#define AMNIC_MAC_STATS_RX_PFC_3_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_4_OFFSET                  0x228u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_4_HI_OFFSET               0x22Cu
#define AMNIC_MAC_STATS_RX_PFC_4_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_5_OFFSET                  0x230u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_5_HI_OFFSET               0x234u
#define AMNIC_MAC_STATS_RX_PFC_5_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_6_OFFSET                  0x238u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_6_HI_OFFSET               0x23Cu
#define AMNIC_MAC_STATS_RX_PFC_6_RESET                   0x0ull
#define AMNIC_MAC_STATS_RX_PFC_7_OFFSET                  0x240u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_RX_PFC_7_HI_OFFSET               0x244u
#define AMNIC_MAC_STATS_RX_PFC_7_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_GOOD_OFFSET            0x300u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_GOOD_HI_OFFSET         0x304u
#define AMNIC_MAC_STATS_TX_FRAMES_GOOD_RESET             0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_BAD_OFFSET             0x308u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_BAD_HI_OFFSET          0x30Cu
#define AMNIC_MAC_STATS_TX_FRAMES_BAD_RESET              0x0ull
#define AMNIC_MAC_STATS_TX_OCTETS_GOOD_OFFSET            0x310u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_OCTETS_GOOD_HI_OFFSET         0x314u
#define AMNIC_MAC_STATS_TX_OCTETS_GOOD_RESET             0x0ull
#define AMNIC_MAC_STATS_TX_OCTETS_BAD_OFFSET             0x318u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_OCTETS_BAD_HI_OFFSET          0x31Cu
#define AMNIC_MAC_STATS_TX_OCTETS_BAD_RESET              0x0ull
#define AMNIC_MAC_STATS_TX_UNDERRUNS_OFFSET              0x320u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_UNDERRUNS_HI_OFFSET           0x324u
#define AMNIC_MAC_STATS_TX_UNDERRUNS_RESET               0x0ull
#define AMNIC_MAC_STATS_TX_USER_BAD_OFFSET               0x328u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_USER_BAD_HI_OFFSET            0x32Cu
#define AMNIC_MAC_STATS_TX_USER_BAD_RESET                0x0ull
#define AMNIC_MAC_STATS_TX_BROADCAST_OFFSET              0x330u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_BROADCAST_HI_OFFSET           0x334u
#define AMNIC_MAC_STATS_TX_BROADCAST_RESET               0x0ull
#define AMNIC_MAC_STATS_TX_MULTICAST_OFFSET              0x338u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_MULTICAST_HI_OFFSET           0x33Cu
#define AMNIC_MAC_STATS_TX_MULTICAST_RESET               0x0ull
#define AMNIC_MAC_STATS_TX_VLAN_OFFSET                   0x340u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_VLAN_HI_OFFSET                0x344u
#define AMNIC_MAC_STATS_TX_VLAN_RESET                    0x0ull
#define AMNIC_MAC_STATS_TX_UNDERSIZE_OFFSET              0x348u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_UNDERSIZE_HI_OFFSET           0x34Cu
#define AMNIC_MAC_STATS_TX_UNDERSIZE_RESET               0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_64_OFFSET              0x350u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_64_HI_OFFSET           0x354u
#define AMNIC_MAC_STATS_TX_FRAMES_64_RESET               0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_65_127_OFFSET          0x358u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_65_127_HI_OFFSET       0x35Cu
#define AMNIC_MAC_STATS_TX_FRAMES_65_127_RESET           0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_128_255_OFFSET         0x360u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_128_255_HI_OFFSET      0x364u
#define AMNIC_MAC_STATS_TX_FRAMES_128_255_RESET          0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_256_511_OFFSET         0x368u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_256_511_HI_OFFSET      0x36Cu
#define AMNIC_MAC_STATS_TX_FRAMES_256_511_RESET          0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_512_1023_OFFSET        0x370u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_512_1023_HI_OFFSET     0x374u
#define AMNIC_MAC_STATS_TX_FRAMES_512_1023_RESET         0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_1024_1518_OFFSET       0x378u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_1024_1518_HI_OFFSET    0x37Cu
#define AMNIC_MAC_STATS_TX_FRAMES_1024_1518_RESET        0x0ull
#define AMNIC_MAC_STATS_TX_FRAMES_1519_MAX_OFFSET        0x380u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_FRAMES_1519_MAX_HI_OFFSET     0x384u
#define AMNIC_MAC_STATS_TX_FRAMES_1519_MAX_RESET         0x0ull
#define AMNIC_MAC_STATS_TX_PAUSE_OFFSET                  0x400u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PAUSE_HI_OFFSET               0x404u
#define AMNIC_MAC_STATS_TX_PAUSE_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_0_OFFSET                  0x408u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_0_HI_OFFSET               0x40Cu
#define AMNIC_MAC_STATS_TX_PFC_0_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_1_OFFSET                  0x410u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_1_HI_OFFSET               0x414u
#define AMNIC_MAC_STATS_TX_PFC_1_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_2_OFFSET                  0x418u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_2_HI_OFFSET               0x41Cu
#define AMNIC_MAC_STATS_TX_PFC_2_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_3_OFFSET                  0x420u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_3_HI_OFFSET               0x424u
#define AMNIC_MAC_STATS_TX_PFC_3_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_4_OFFSET                  0x428u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_4_HI_OFFSET               0x42Cu
#define AMNIC_MAC_STATS_TX_PFC_4_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_5_OFFSET                  0x430u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_5_HI_OFFSET               0x434u
#define AMNIC_MAC_STATS_TX_PFC_5_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_6_OFFSET                  0x438u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_6_HI_OFFSET               0x43Cu
#define AMNIC_MAC_STATS_TX_PFC_6_RESET                   0x0ull
#define AMNIC_MAC_STATS_TX_PFC_7_OFFSET                  0x440u  /* RO, 64 bit */
#define AMNIC_MAC_STATS_TX_PFC_7_HI_OFFSET               0x444u
#define AMNIC_MAC_STATS_TX_PFC_7_RESET                   0x0ull

#endif /* AMNIC_MAC_STATS_H */
