/* acl register block: generated from its description; do not edit. */
#ifndef AMNIC_ACL_H
#define AMNIC_ACL_H

#define AMNIC_ACL_TYPE_ID_VALUE                          0x41434C54u
#define AMNIC_ACL_VERSION_VALUE                          0x00010000u
#define AMNIC_ACL_SIZE_VALUE                             0x100u

#define AMNIC_ACL_TYPE_ID_OFFSET                         0x000u  /* RO, 32 bit */
#define AMNIC_ACL_TYPE_ID_RESET                          0x41434C54u
#define AMNIC_ACL_VERSION_OFFSET                         0x004u  /* RO, 32 bit */
#define AMNIC_ACL_VERSION_RESET                          0x10000u
#define AMNIC_ACL_SIZE_OFFSET                            0x008u  /* RO, 32 bit */
#define AMNIC_ACL_SIZE_RESET                             0x100u
#define AMNIC_ACL_RULES_OFFSET                           0x00Cu  /* RO, 32 bit */
#define AMNIC_ACL_RULES_RESET                            0x0u
#define AMNIC_ACL_CONTROL_OFFSET                         0x010u  /* RW, 32 bit */
#define AMNIC_ACL_CONTROL_RESET                          0x0u
#define AMNIC_ACL_CONTROL_DEFAULT_VERDICT_SHIFT          0
#define AMNIC_ACL_CONTROL_DEFAULT_VERDICT_MASK           0x1u
#define AMNIC_ACL_INDEX_OFFSET                           0x014u  /* RW, 32 bit */
#define AMNIC_ACL_INDEX_RESET                            0x0u
#define AMNIC_ACL_COMMAND_OFFSET                         0x018u  /* W1S, 32 bit */
#define AMNIC_ACL_COMMAND_RESET                          0x0u
#define AMNIC_ACL_COMMAND_WRITE_SHIFT                    0
#define AMNIC_ACL_COMMAND_WRITE_MASK                     0x1u
#define AMNIC_ACL_COMMAND_READ_SHIFT                     1
#define AMNIC_ACL_COMMAND_READ_MASK                      0x2u
#define AMNIC_ACL_COMMAND_CLEAR_SHIFT                    2
#define AMNIC_ACL_COMMAND_CLEAR_MASK                     0x4u
#define AMNIC_ACL_ACTION_OFFSET                          0x01Cu  /* RW, 32 bit */
#define AMNIC_ACL_ACTION_RESET                           0x82000000u
#define AMNIC_ACL_ACTION_VERDICT_SHIFT                   0
#define AMNIC_ACL_ACTION_VERDICT_MASK                    0x1u
#define AMNIC_ACL_ACTION_QUEUE_FIRST_SHIFT               1
#define AMNIC_ACL_ACTION_QUEUE_FIRST_MASK                0x1FFEu
#define AMNIC_ACL_ACTION_QUEUE_COUNT_SHIFT               13
#define AMNIC_ACL_ACTION_QUEUE_COUNT_MASK                0x3FFE000u
#define AMNIC_ACL_ACTION_VALID_SHIFT                     31
#define AMNIC_ACL_ACTION_VALID_MASK                      0x80000000u
#define AMNIC_ACL_VALUE_0_OFFSET                         0x040u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_0_RESET                          0x0u
#define AMNIC_ACL_VALUE_1_OFFSET                         0x044u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_1_RESET                          0x0u
#define AMNIC_ACL_VALUE_2_OFFSET                         0x048u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_2_RESET                          0x0u
#define AMNIC_ACL_VALUE_3_OFFSET                         0x04Cu  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_3_RESET                          0x0u
#define AMNIC_ACL_VALUE_4_OFFSET                         0x050u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_4_RESET                          0x0u
#define AMNIC_ACL_VALUE_5_OFFSET                         0x054u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_5_RESET                          0x0u
#define AMNIC_ACL_VALUE_6_OFFSET                         0x058u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_6_RESET                          0x0u
#define AMNIC_ACL_VALUE_7_OFFSET                         0x05Cu  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_7_RESET                          0x0u
#define AMNIC_ACL_VALUE_8_OFFSET                         0x060u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_8_RESET                          0x0u
#define AMNIC_ACL_VALUE_9_OFFSET                         0x064u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_9_RESET                          0x0u
#define AMNIC_ACL_VALUE_10_OFFSET                        0x068u  /* RW, 32 bit */
#define AMNIC_ACL_VALUE_10_RESET                         0x0u
#define AMNIC_ACL_MASK_0_OFFSET                          0x080u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_0_RESET                           0x0u
#define AMNIC_ACL_MASK_1_OFFSET                          0x084u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_1_RESET                           0x0u
#define AMNIC_ACL_MASK_2_OFFSET                          0x088u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_2_RESET                           0x0u
#define AMNIC_ACL_MASK_3_OFFSET                          0x08Cu  /* RW, 32 bit */
#define AMNIC_ACL_MASK_3_RESET                           0x0u
#define AMNIC_ACL_MASK_4_OFFSET                          0x090u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_4_RESET                           0x0u
#define AMNIC_ACL_MASK_5_OFFSET                          0x094u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_5_RESET                           0x0u
#define AMNIC_ACL_MASK_6_OFFSET                          0x098u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_6_RESET                           0x0u
#define AMNIC_ACL_MASK_7_OFFSET                          0x09Cu  /* RW, 32 bit */
#define AMNIC_ACL_MASK_7_RESET                           0x0u
#define AMNIC_ACL_MASK_8_OFFSET                          0x0A0u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_8_RESET                           0x0u
#define AMNIC_ACL_MASK_9_OFFSET                          0x0A4u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_9_RESET                           0x0u
#define AMNIC_ACL_MASK_10_OFFSET                         0x0A8u  /* RW, 32 bit */
#define AMNIC_ACL_MASK_10_RESET                          0x0u

#endif /* AMNIC_ACL_H */
