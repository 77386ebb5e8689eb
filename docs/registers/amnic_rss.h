/* rss register block: generated from its description; do not edit. */
#ifndef AMNIC_RSS_H
#define AMNIC_RSS_H

#define AMNIC_RSS_TYPE_ID_VALUE                          0x52535349u
#define AMNIC_RSS_VERSION_VALUE                          0x00010000u
#define AMNIC_RSS_SIZE_VALUE                             0x80u

#define AMNIC_RSS_TYPE_ID_OFFSET                         0x000u  /* RO, 32 bit */
#define AMNIC_RSS_TYPE_ID_RESET                          0x52535349u
#define AMNIC_RSS_VERSION_OFFSET                         0x004u  /* RO, 32 bit */
#define AMNIC_RSS_VERSION_RESET                          0x10000u
#define AMNIC_RSS_SIZE_OFFSET                            0x008u  /* RO, 32 bit */
#define AMNIC_RSS_SIZE_RESET                             0x80u
#define AMNIC_RSS_CONTROL_OFFSET                         0x00Cu  /* RW, 32 bit */
#define AMNIC_RSS_CONTROL_RESET                          0x7Eu
#define AMNIC_RSS_CONTROL_ENABLE_SHIFT                   0
#define AMNIC_RSS_CONTROL_ENABLE_MASK                    0x1u
#define AMNIC_RSS_CONTROL_IPV4_SHIFT                     1
#define AMNIC_RSS_CONTROL_IPV4_MASK                      0x2u
#define AMNIC_RSS_CONTROL_TCP_IPV4_SHIFT                 2
#define AMNIC_RSS_CONTROL_TCP_IPV4_MASK                  0x4u
#define AMNIC_RSS_CONTROL_UDP_IPV4_SHIFT                 3
#define AMNIC_RSS_CONTROL_UDP_IPV4_MASK                  0x8u
#define AMNIC_RSS_CONTROL_IPV6_SHIFT                     4
#define AMNIC_RSS_CONTROL_IPV6_MASK                      0x10u
#define AMNIC_RSS_CONTROL_TCP_IPV6_SHIFT                 5
#define AMNIC_RSS_CONTROL_TCP_IPV6_MASK                  0x20u
#define AMNIC_RSS_CONTROL_UDP_IPV6_SHIFT                 6
#define AMNIC_RSS_CONTROL_UDP_IPV6_MASK                  0x40u
#define AMNIC_RSS_RETA_INFO_OFFSET                       0x010u  /* RO, 32 bit */
#define AMNIC_RSS_RETA_INFO_RESET                        0xC07u
#define AMNIC_RSS_RETA_INFO_TABLE_LOG2_SHIFT             0
#define AMNIC_RSS_RETA_INFO_TABLE_LOG2_MASK              0x1Fu
#define AMNIC_RSS_RETA_INFO_QUEUE_BITS_SHIFT             8
#define AMNIC_RSS_RETA_INFO_QUEUE_BITS_MASK              0x1F00u
#define AMNIC_RSS_RETA_INDEX_OFFSET                      0x014u  /* RW, 32 bit */
#define AMNIC_RSS_RETA_INDEX_RESET                       0x0u
#define AMNIC_RSS_RETA_INDEX_INDEX_SHIFT                 0
#define AMNIC_RSS_RETA_INDEX_INDEX_MASK                  0xFFFFu
#define AMNIC_RSS_RETA_DATA_OFFSET                       0x018u  /* RW, 32 bit */
#define AMNIC_RSS_RETA_DATA_RESET                        0x0u
#define AMNIC_RSS_RETA_DATA_QUEUE_SHIFT                  0
#define AMNIC_RSS_RETA_DATA_QUEUE_MASK                   0xFFFFu
#define AMNIC_RSS_RETA_CMD_OFFSET                        0x01Cu  /* W1S, 32 bit */
#define AMNIC_RSS_RETA_CMD_RESET                         0x0u
#define AMNIC_RSS_RETA_CMD_WRITE_SHIFT                   0
#define AMNIC_RSS_RETA_CMD_WRITE_MASK                    0x1u
#define AMNIC_RSS_RETA_CMD_READ_SHIFT                    1
#define AMNIC_RSS_RETA_CMD_READ_MASK                     0x2u
#define AMNIC_RSS_KEY_0_OFFSET                           0x020u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_0_RESET                            0x6D5A56DAu
#define AMNIC_RSS_KEY_1_OFFSET                           0x024u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_1_RESET                            0x255B0EC2u
#define AMNIC_RSS_KEY_2_OFFSET                           0x028u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_2_RESET                            0x4167253Du
#define AMNIC_RSS_KEY_3_OFFSET                           0x02Cu  /* RW, 32 bit */
#define AMNIC_RSS_KEY_3_RESET                            0x43A38FB0u
#define AMNIC_RSS_KEY_4_OFFSET                           0x030u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_4_RESET                            0xD0CA2BCBu
#define AMNIC_RSS_KEY_5_OFFSET                           0x034u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_5_RESET                            0xAE7B30B4u
#define AMNIC_RSS_KEY_6_OFFSET                           0x038u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_6_RESET                            0x77CB2DA3u
#define AMNIC_RSS_KEY_7_OFFSET                           0x03Cu  /* RW, 32 bit */
#define AMNIC_RSS_KEY_7_RESET                            0x8030F20Cu
#define AMNIC_RSS_KEY_8_OFFSET                           0x040u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_8_RESET                            0x6A42B73Bu
#define AMNIC_RSS_KEY_9_OFFSET                           0x044u  /* RW, 32 bit */
#define AMNIC_RSS_KEY_9_RESET                            0xBEAC01FAu

#endif /* AMNIC_RSS_H */
